"""Accuracy of int8 edges (engine/int8.py) against float32 edges, measured in the C engine.

    python -m benchmarks.int8_accuracy [--json] [--fmnist-limit N] [--images N] [--width W]

1. The bundled Fashion-MNIST models (service/models/*): top-1 on the test set with the
   file's float32 edges and with the same file converted to int8 edges. Gate: int8 within
   0.1 points of float32, and >= 92.0 % (XNOR) / >= 92.5 % (BWN).
2. ImageNet-size networks with seeded weights (no trained weights are available here): the
   paper's XNOR AlexNet and Larq Zoo's BinaryResNetE18, on natural-looking uint8 images
   (scikit-image's sample photos with random crops and flips, and upscaled Fashion-MNIST):
   - the fraction of sign bits entering the first binary layer that differ between the
     float and the int8 first conv (gate <= 0.5 %);
   - the error of the logits with int8 linear layers alone, per image as a fraction of that
     image's largest |logit| (gate: the worst image <= 1 %);
   - the top-1 agreement of the whole network, float32 vs int8 edges (reported, no gate).

Without the Fashion-MNIST data (Debian's dataset-fashion-mnist) part 1 is skipped and the
images of part 2 are photos only; without scikit-image they are upscaled Fashion-MNIST (or
synthetic) only. The output says which. Exit status 1 when a gate fails.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from typing import Any

import numpy as np
from PIL import Image

from engine import Model
from engine import format as fmt
from engine.graph import Graph
from engine.int8 import quantize_first_conv, quantize_linear, with_edges

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUNDLED = {"xnor": ROOT / "service/models/fashion-mnist-xnor/1/model.xnor"}
BUNDLED["bwn"] = ROOT / "service/models/fashion-mnist-bwn/1/model.xnor"
FMNIST_MIN_TOP1 = {"xnor": 0.920, "bwn": 0.925}
MAX_TOP1_DROP = 0.001  # 0.1 points
MAX_SIGN_FLIPS = 0.005
MAX_LOGIT_ERROR = 0.01
# Synthetic drawings among scikit-image's sample images: not natural-looking.
PHOTOS_SKIPPED = {"chessboard_GRAY", "chessboard_RGB", "logo", "phantom", "color"}


def _progress(msg: str) -> None:
    print(f"[int8-accuracy] {msg}", file=sys.stderr, flush=True)


def _fmnist(split: str, limit: int) -> tuple[np.ndarray, np.ndarray] | None:
    from training import data

    if not data.fashion_mnist_available():
        return None
    images, labels = data.load_fashion_mnist(split)
    return (images[:limit], labels[:limit]) if limit else (images, labels)


def _top1(model: Model, images: np.ndarray, labels: np.ndarray, batch: int = 500) -> float:
    hits = 0
    for i in range(0, len(labels), batch):
        out = model.infer(images[i : i + batch, :, :, None])  # uint8 NHWC
        hits += int((out.argmax(axis=1) == labels[i : i + batch]).sum())
    return hits / len(labels)


def fashion_mnist(limit: int, threads: int | None) -> dict[str, Any] | None:
    test = _fmnist("test", limit)
    if test is None:
        return None
    images, labels = test
    out: dict[str, Any] = {"n": len(labels)}
    for mode, path in BUNDLED.items():
        graph = fmt.read_model(path)
        f32 = Model.from_bytes(fmt.to_bytes(graph), threads=threads)
        q = Model.from_bytes(fmt.to_bytes(with_edges(graph, "int8")), threads=threads)
        _progress(f"Fashion-MNIST {mode}: {len(labels)} test images, float32 and int8 edges")
        a, b = _top1(f32, images, labels), _top1(q, images, labels)
        out[mode] = {
            "top1_float32": a,
            "top1_int8": b,
            "drop_points": 100 * (a - b),
            "ok": (a - b <= MAX_TOP1_DROP + 1e-12 and b >= FMNIST_MIN_TOP1[mode]) or len(labels) < 10000,
            "gate_applies": len(labels) == 10000,
        }
    return out


def natural_images(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, dict[str, int]]:
    """n uint8 RGB images of size x size: photo crops (with flips) and upscaled Fashion-MNIST,
    about half each when both are available."""
    rng = np.random.default_rng(seed)
    sources: list[np.ndarray] = []
    try:
        import skimage.data as skd

        folder = pathlib.Path(skd.__file__).parent  # the photos the wheel ships (no download)
        for path in sorted(folder.glob("*.png")) + sorted(folder.glob("*.jpg")):
            if path.stem in PHOTOS_SKIPPED:
                continue
            sources.append(np.asarray(Image.open(path).convert("RGB"), np.uint8))
    except ImportError:
        _progress("scikit-image is not installed: no photos, Fashion-MNIST (or synthetic) images only")
    fm = _fmnist("test", 0)
    n_photo = n // 2 if (sources and fm is not None) else (n if sources else 0)
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n_photo):
        img = sources[i % len(sources)]
        h, w = img.shape[:2]
        side = int(min(h, w) * rng.uniform(0.3, 1.0))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = img[y : y + side, x : x + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        pil = Image.fromarray(np.ascontiguousarray(crop))
        out[i] = np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR))
    if fm is not None:
        small = fm[0][rng.permutation(len(fm[0]))[: n - n_photo]]
    else:
        from training.data import synthetic

        small = synthetic(n - n_photo, seed)[0]
    for j, img in enumerate(small):
        big = np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BICUBIC))
        out[n_photo + j] = big[:, :, None]
    return out, {"photo_crops": n_photo, "fashion_mnist_upscaled": n - n_photo}


def _first_binary_input(graph: Graph) -> tuple[int, int]:
    """(value id read by the first XNOR bconv2d/blinear, its node index)."""
    for i, node in enumerate(graph.nodes):
        if node.op in ("bconv2d", "blinear") and node.mode == "xnor":
            return graph.resolved_inputs(i)[0], i
    raise ValueError("the graph has no XNOR layer")


def _edges_only(graph: Graph, which: str) -> Graph:
    """int8 on one side only: 'first' (the first conv) or 'linear' (every float linear)."""
    nodes = []
    for i, node in enumerate(graph.nodes):
        if which == "first" and node.op == "conv2d" and graph.resolved_inputs(i) == (0,):
            q = quantize_first_conv(node, graph.input)
        elif which == "linear" and node.op == "linear":
            q = quantize_linear(node)
            q.inputs = graph.resolved_inputs(i)
        else:
            q = node
        nodes.append(q)
    return Graph(graph.input, nodes, graph.labels, graph.name)


def _trace_value(model: Model, x: np.ndarray, value: int, batch: int) -> np.ndarray:
    return np.concatenate([model.trace(x[i : i + batch])[value] for i in range(0, len(x), batch)])


def imagenet_size(name: str, graph: Graph, images: np.ndarray, threads: int | None) -> dict[str, Any]:
    value, node = _first_binary_input(graph)
    f32 = Model.from_bytes(fmt.to_bytes(graph), threads=threads)
    first = Model.from_bytes(fmt.to_bytes(_edges_only(graph, "first")), threads=threads)
    lin = Model.from_bytes(fmt.to_bytes(_edges_only(graph, "linear")), threads=threads)
    both = Model.from_bytes(fmt.to_bytes(with_edges(graph, "int8")), threads=threads)
    _progress(f"{name}: sign bits into {graph.nodes[node].name or node} over {len(images)} images")
    a = _trace_value(f32, images, value, 16) >= 0
    b = _trace_value(first, images, value, 16) >= 0
    flips = float(np.mean(a != b))
    _progress(f"{name}: logits with int8 linear layers, and the whole network")
    ref = np.concatenate([f32.infer(images[i : i + 32]) for i in range(0, len(images), 32)])
    got = np.concatenate([lin.infer(images[i : i + 32]) for i in range(0, len(images), 32)])
    q = np.concatenate([both.infer(images[i : i + 32]) for i in range(0, len(images), 32)])
    rel = np.abs(got - ref).max(axis=1) / np.maximum(np.abs(ref).max(axis=1), 1e-30)
    return {
        "images": len(images),
        "first_binary_layer": graph.nodes[node].name,
        "sign_flips": flips,
        "sign_flips_ok": flips <= MAX_SIGN_FLIPS,
        "logit_error_max": float(rel.max()),
        "logit_error_median": float(np.median(rel)),
        "logit_error_ok": float(rel.max()) <= MAX_LOGIT_ERROR,
        # the same, over the whole set: the largest error of any logit / the largest |logit|
        "logit_error_over_set": float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30)),
        "top1_agreement": float(np.mean(q.argmax(axis=1) == ref.argmax(axis=1))),
        "file_bytes_float32": len(fmt.to_bytes(graph)),
        "file_bytes_int8": len(fmt.to_bytes(with_edges(graph, "int8"))),
    }


def networks(width: float) -> dict[str, Graph]:
    from . import architectures
    from .larq_speed import build_graph

    return {
        "alexnet-xnor": architectures.alexnet(seed=0, width=width),
        "binary-resnet-e18": build_graph("resnet-e18", seed=0, softmax=False, width=width),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"fashion_mnist": fashion_mnist(args.fmnist_limit, args.threads)}
    if result["fashion_mnist"] is None:
        _progress("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist): part 1 skipped")
    result["imagenet_size"] = {}
    for name, graph in networks(args.width).items():
        images, kinds = natural_images(args.images, graph.input.height, seed=1)
        r = imagenet_size(name, graph, images, args.threads)
        r["image_kinds"] = kinds
        result["imagenet_size"][name] = r
    fm = result["fashion_mnist"] or {}
    result["ok"] = all(fm[m]["ok"] for m in BUNDLED if m in fm) and all(
        r["sign_flips_ok"] and r["logit_error_ok"] for r in result["imagenet_size"].values()
    )
    return result


def print_report(r: dict[str, Any]) -> None:
    fm = r["fashion_mnist"]
    if fm:
        print(f"Fashion-MNIST test set ({fm['n']} images), top-1 in the C engine:")
        for mode in BUNDLED:
            m = fm[mode]
            print(
                f"  {mode:<5} float32 {100 * m['top1_float32']:.2f} %  int8 {100 * m['top1_int8']:.2f} %  "
                f"drop {m['drop_points']:+.2f} points  {'ok' if m['ok'] else 'FAIL'}"
            )
    for name, s in r["imagenet_size"].items():
        print(f"{name} ({s['images']} images: {s['image_kinds']}):")
        print(
            f"  sign bits into {s['first_binary_layer']} that differ: {100 * s['sign_flips']:.3f} % "
            f"({'ok' if s['sign_flips_ok'] else 'FAIL'}, gate {100 * MAX_SIGN_FLIPS} %)"
        )
        print(
            f"  int8 linear logits error: worst {100 * s['logit_error_max']:.3f} %, median "
            f"{100 * s['logit_error_median']:.3f} % of the image's largest logit, "
            f"{100 * s['logit_error_over_set']:.3f} % over the set "
            f"({'ok' if s['logit_error_ok'] else 'FAIL'}, gate {100 * MAX_LOGIT_ERROR} %)"
        )
        print(f"  top-1 agreement, whole network: {100 * s['top1_agreement']:.1f} %")
        print(f"  file {s['file_bytes_float32'] / 1e6:.2f} MB -> {s['file_bytes_int8'] / 1e6:.2f} MB")
    print("all gates pass" if r["ok"] else "A GATE FAILS")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true")
    p.add_argument("--fmnist-limit", type=int, default=0, help="first N test images (default: all 10k)")
    p.add_argument("--images", type=int, default=500, help="natural images per ImageNet-size network")
    p.add_argument("--width", type=float, default=1.0, help="channel multiplier of the seeded networks")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    r = run(args)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print_report(r)
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
