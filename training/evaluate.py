"""`xnornet eval`: top-1 / top-5 of a packed model on a dataset, run in the C engine
(`engine.Model`; `--reference` runs the numpy oracle instead). Needs no PyTorch."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import numpy as np

from . import data as D


def _bar(done: int, total: int, t0: float, extra: str = "") -> str:
    frac = done / max(1, total)
    el = time.time() - t0
    return f"\r[{'#' * int(30 * frac):<30}] {done}/{total} {extra} {el:.1f}s"


def _predict_fn(
    model_path: str, reference: bool, threads: int | None
) -> tuple[Callable[[np.ndarray], np.ndarray], Any]:
    if reference:
        from engine import format as fmt
        from engine import reference as ref

        m = fmt.read_model(model_path)
        return (lambda x: np.asarray(ref.forward(m, x))), m.input
    import engine

    model = engine.Model.load(model_path, threads=threads)
    return model.infer, model.info


def evaluate_model(
    model_path: str,
    dataset: str = "fashion-mnist",
    *,
    data_root: str | None = None,
    limit: int = 0,
    batch_size: int = 500,
    reference: bool = False,
    threads: int | None = None,
    progress: TextIO | None = None,
) -> dict[str, Any]:
    """{'top1', 'top5', 'n', 'seconds'} of the model on the dataset's test / val split."""
    predict, info = _predict_fn(model_path, reference, threads)
    if reference:
        shape = (info.channels, info.height, info.width)
        scale, mean, std, resize_size, color = info.scale, info.mean, info.std, info.resize_size, info.color
    else:
        shape = info.input_shape
        scale, mean, std, resize_size, color = info.scale, info.mean, info.std, info.resize_size, info.color

    if dataset == "fashion-mnist":
        images, labels = D.load_fashion_mnist("test", data_root)
        if shape != (1, 28, 28):
            raise ValueError(f"model input {shape} is not Fashion-MNIST's (1, 28, 28)")

        def get(sl: slice) -> np.ndarray:
            return D.preprocess(images[sl], scale, mean, std)
    elif dataset == "imagenet-folder":
        if not data_root:
            raise ValueError("imagenet-folder needs --data-root (a folder of class folders)")
        _, items = D.list_image_folder(data_root)
        labels = np.array([c for _, c in items], np.int64)

        def get(sl: slice) -> np.ndarray:
            arrs = [
                D.load_image(p, resize_size or max(shape[1:]), shape[1], color=color) for p, _ in items[sl]
            ]
            return D.preprocess(np.stack(arrs), scale, mean, std)
    else:
        raise ValueError(f"unknown dataset {dataset!r} (fashion-mnist | imagenet-folder)")

    n = min(limit, len(labels)) if limit else len(labels)
    top1 = top5 = 0
    t0 = time.time()
    for sl in D.batches(n, batch_size):
        out = predict(get(sl))
        k = min(5, out.shape[1])
        pred = np.argsort(-out, axis=1, kind="stable")[:, :k]
        y = labels[sl]
        top1 += int((pred[:, 0] == y).sum())
        top5 += int((pred == y[:, None]).any(axis=1).sum())
        if progress is not None:
            progress.write(_bar(sl.stop, n, t0, f"top-1 {100 * top1 / sl.stop:.2f}%"))
            progress.flush()
    if progress is not None:
        progress.write("\n")
    return {
        "top1": top1 / max(1, n),
        "top5": top5 / max(1, n),
        "n": n,
        "seconds": time.time() - t0,
        "engine": "reference" if reference else "c",
    }


def main_eval(args: Any) -> int:
    res = evaluate_model(
        args.model,
        args.dataset,
        data_root=args.data_root,
        limit=args.limit,
        batch_size=args.batch_size,
        reference=args.reference,
        threads=args.threads,
        progress=None if args.quiet else sys.stderr,
    )
    if args.json:
        import json

        print(json.dumps(res))
    else:
        print(
            f"{args.model}: {args.dataset} n={res['n']} top-1 {100 * res['top1']:.2f}% "
            f"top-5 {100 * res['top5']:.2f}% ({res['engine']} engine, {res['seconds']:.1f}s)"
        )
    return 0
