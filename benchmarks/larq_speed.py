"""The Larq Zoo architectures against their PyTorch float32 twins: `xnornet bench --arch resnet-e18`.

    build_graph(arch, seed)    the engine graph (engine.format.Model) with seeded weights, the same
                               layers and shapes an imported release file gives (224 x 224 x 3 input,
                               1000 classes); no file, no C engine needed to build it
    torch_float_twin(arch)     a PyTorch float32 nn.Module of the same architecture (every binary
                               conv / dense a float one, TF 'same' padding included, convs that are
                               dense layers as Linear), eval mode
    bench(arch, ...)           both in one process, batch 1, medians after warm-up

Arch names: resnet-e18 (BinaryResNetE18), xnornet-larq (XNORNet), binary-alexnet-larq
(BinaryAlexNet); training.larq_zoo's names are accepted too. Run as
`python -m benchmarks.larq_speed --arch resnet-e18 --threads 1`.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from typing import Any

import numpy as np

from engine import format as fmt
from engine.graph import Graph
from training import larq_zoo as lz

from .timing import median_seconds

BENCH_ARCHES = {
    "resnet-e18": "resnet-e18",
    "xnornet-larq": "xnornet",
    "binary-alexnet-larq": "binary-alexnet",
}


def _arch(name: str) -> str:
    return BENCH_ARCHES.get(name) or lz.canonical_arch(name)


def build_graph(arch: str, seed: int = 0, *, softmax: bool = True, width: float = 1.0) -> Graph:
    """The engine graph of a Larq Zoo architecture at its real size, with seeded weights
    (width < 1 scales the channels down, for tests)."""
    a = _arch(arch)
    cfg = lz.ArchConfig(width=width)
    labels = [f"class_{i:04d}" for i in range(cfg.classes)]
    return lz.build_model(a, lz.seeded_weights(a, cfg, seed), cfg, labels=labels, softmax=softmax)


def input_shape(arch: str) -> tuple[int, int, int]:
    _arch(arch)
    return (3, 224, 224)


def torch_float_twin(arch: str, classes: int = 1000, width: float = 1.0) -> Any:
    """PyTorch float32 module of the same architecture (random init, eval mode)."""
    import torch
    from torch import nn

    a = _arch(arch)
    c = lz.ArchConfig(width=width).ch

    def same(k: int, s: int, size: int, value: float = 0.0) -> tuple[nn.Module, int]:
        out, b, e = lz._same(size, k, s)
        return nn.ConstantPad2d((b, e, b, e), value), out

    if a == "xnornet":
        layers: list[nn.Module] = []
        pad, _ = same(11, 4, 224)
        layers += [
            pad,
            nn.Conv2d(3, c(96), 11, 4, bias=False),
            nn.BatchNorm2d(c(96)),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.BatchNorm2d(c(96)),
        ]
        prev = c(96)
        for n, k, pool in [(c(256), 5, True), (c(384), 3, False), (c(384), 3, False), (c(256), 3, True)]:
            layers.append(nn.Conv2d(prev, n, k, padding=k // 2, bias=False))
            if pool:
                layers.append(nn.MaxPool2d(3, 2))
            layers.append(nn.BatchNorm2d(n))
            prev = n
        # The 6x6 valid conv on the 6x6 map and the 1x1 conv after it are dense layers: PyTorch runs
        # them as Linear (the same arithmetic); its Conv2d takes ~10x longer on them (weight reorder
        # per call), which would flatter the engine.
        f = c(4096)
        layers += [
            nn.Flatten(),
            nn.Linear(prev * 36, f, bias=False),
            nn.BatchNorm1d(f),
            nn.Linear(f, f, bias=False),
            nn.BatchNorm1d(f),
            nn.ReLU(),
            nn.Linear(f, classes, bias=False),
        ]
        return nn.Sequential(*layers).eval()

    if a == "binary-alexnet":
        layers = []
        pad, _ = same(11, 4, 224)
        prev = 3
        for i, (n, k, pool) in enumerate(
            [(c(64), 11, True), (c(192), 5, True), (c(384), 3, False), (c(384), 3, False), (c(256), 3, True)]
        ):
            if i == 0:
                layers += [pad, nn.Conv2d(3, n, k, 4, bias=False)]
            else:
                layers.append(nn.Conv2d(prev, n, k, padding=k // 2, bias=False))
            if pool:
                layers.append(nn.MaxPool2d(3, 2))
            layers.append(nn.BatchNorm2d(n))
            prev = n
        layers.append(nn.Flatten())
        fin = prev * 6 * 6
        for n in (c(4096), c(4096), classes):
            layers += [nn.Linear(fin, n, bias=False), nn.BatchNorm1d(n)]
            fin = n
        return nn.Sequential(*layers).eval()

    class Block(nn.Module):
        def __init__(self, cin: int, f: int, stride: int, size: int) -> None:
            super().__init__()
            if stride == 1:
                self.pad: nn.Module = nn.Identity()
                self.conv = nn.Conv2d(cin, f, 3, 1, 1, bias=False)
            else:
                self.pad, _ = same(3, stride, size)
                self.conv = nn.Conv2d(cin, f, 3, stride, bias=False)
            self.bn = nn.BatchNorm2d(f)
            self.short: nn.Module = (
                nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, f, 1, bias=False), nn.BatchNorm2d(f))
                if cin != f
                else nn.Identity()
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bn(self.conv(self.pad(x))) + self.short(x)

    pad, size = same(7, 2, 224)
    pool_pad, size = same(3, 2, size, float("-inf"))  # padded cells never win the max
    layers = [
        pad,
        nn.Conv2d(3, c(64), 7, 2, bias=False),
        nn.BatchNorm2d(c(64)),
        nn.ReLU(),
        pool_pad,
        nn.MaxPool2d(3, 2),
        nn.BatchNorm2d(c(64)),
    ]
    prev = c(64)
    for stage, filters in enumerate([64, 128, 256, 512]):
        for block in range(4):
            stride = 2 if stage > 0 and block == 0 else 1
            layers.append(Block(prev, c(filters), stride, size))
            size = -(-size // stride)
            prev = c(filters)
    layers += [nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(prev, classes)]
    return nn.Sequential(*layers).eval()


def bench(
    arch: str,
    threads: int = 1,
    batch: int = 1,
    repeat: int = 20,
    warmup: int = 3,
    with_torch: bool = True,
    isa: str | None = None,
) -> dict[str, Any]:
    """Engine vs PyTorch float32 in the same process: ms per image (medians)."""
    from engine.model import Model

    graph = build_graph(arch, seed=0)
    blob = fmt.to_bytes(graph)
    model = Model.from_bytes(blob, threads=threads, isa=isa)
    x = np.random.default_rng(0).standard_normal((batch, *input_shape(arch))).astype(np.float32)
    eng = median_seconds(functools.partial(model.infer, x), repeat, warmup)
    info = model.info
    row: dict[str, Any] = {
        "arch": arch,
        "isa": model.isa,
        "threads": threads,
        "batch": batch,
        "engine_ms_per_image": 1e3 * eng / batch,
        "torch_float_ms_per_image": None,
        "speedup": None,
        "model_bytes": info.file_bytes,
        "float32_model_bytes": info.weight_bytes_float32,
    }
    if with_torch:
        import torch

        torch.set_num_threads(threads)
        net = torch_float_twin(arch)
        tx = torch.from_numpy(x)
        with torch.inference_mode():
            tt = median_seconds(functools.partial(net, tx), repeat, warmup)
        row.update(
            torch_float_ms_per_image=1e3 * tt / batch, speedup=tt / eng, torch_version=torch.__version__
        )
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.larq_speed", description=__doc__.split("\n")[0])
    p.add_argument("--arch", action="append", choices=sorted(BENCH_ARCHES), help="repeatable (default: all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--no-torch", action="store_true")
    args = p.parse_args(argv)
    for arch in args.arch or sorted(BENCH_ARCHES):
        print(json.dumps(bench(arch, args.threads, args.batch, args.repeat, args.warmup, not args.no_torch)))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
