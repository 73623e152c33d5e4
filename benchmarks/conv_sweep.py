"""`xnornet bench --sweep [--plot DIR]`: the paper's efficiency analysis, measured.

The paper (Sec. 3.3, Fig. 4) predicts the speedup of a binary convolution with c input
channels and N_W = w*h filter taps over the float one as S = 64 c N_W / (c N_W + 64).
This measures one convolution (XNOR mode, 14x14 output, 256 filters unless varied) in
the engine against the same float convolution (the engine's own float path, and PyTorch
float32 when installed), sweeping c with a 3x3 filter and the filter size with c = 256,
and draws the measurement beside the theory and beside this machine's own ceiling (the
binary over float MACs per second of the engine's kernels on cache-resident data).
A third figure compares the bytes of AlexNet, ResNet-18 and VGG-19 in float32 and packed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

import numpy as np

from engine import builders
from engine import format as fmt
from engine.graph import Graph
from engine.input_spec import InputSpec
from engine.model import Model, resolve_isa

OUT_HW = 14
FILTERS = 256
CHANNELS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
KERNELS = [1, 3, 5, 7, 9, 11, 13, 15]


def paper_speedup(c: int, taps: int) -> float:
    return 64.0 * c * taps / (c * taps + 64.0)


def _progress(msg: str) -> None:
    print(f"[sweep] {msg}", file=sys.stderr, flush=True)


def _layer_model(c: int, k: int, binary: bool, o: int = FILTERS, hw: int = OUT_HW) -> Model:
    rng = np.random.default_rng(c * 100 + k)
    if binary:
        signs, alpha = builders.binarize_weights(rng.standard_normal((o, c, k, k)))
        node = builders.bconv2d(signs, alpha, None, padding=k // 2, name="layer")
    else:
        node = builders.conv2d(
            rng.standard_normal((o, c, k, k)).astype(np.float32), None, padding=k // 2, name="layer"
        )
    spec = InputSpec(c, hw, hw, "other", mean=(0.0,) * min(c, 4), std=(1.0,) * min(c, 4))
    return Model.from_bytes(fmt.to_bytes(Graph(spec, [node])), threads=1)


def _node_ms(model: Model, x: np.ndarray, repeat: int) -> float:
    """Median time of the conv node alone (the engine's own per-node clock)."""
    model.infer_timed(x)
    return statistics.median(model.infer_timed(x)[1][0] for _ in range(repeat)) / 1e6


def _torch_ms(torch: Any, c: int, k: int, repeat: int) -> float:
    conv = torch.nn.Conv2d(c, FILTERS, k, 1, k // 2, bias=False).eval()
    x = torch.randn(1, c, OUT_HW, OUT_HW)
    with torch.inference_mode():
        for _ in range(2):
            conv(x)
        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            conv(x)
            ts.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(ts)


def measure_point(c: int, k: int, repeat: int, torch: Any | None) -> dict[str, Any]:
    x = np.random.default_rng(0).standard_normal((1, c, OUT_HW, OUT_HW)).astype(np.float32)
    b = _node_ms(_layer_model(c, k, True), x, repeat)
    f = _node_ms(_layer_model(c, k, False), x, repeat)
    t = _torch_ms(torch, c, k, repeat) if torch is not None else None
    return {
        "c": c,
        "k": k,
        "binary_ms": b,
        "engine_float_ms": f,
        "torch_float_ms": t,
        "speedup_vs_engine_float": f / b,
        "speedup_vs_torch": (t / b) if t is not None else None,
        "paper_speedup": paper_speedup(c, k * k),
    }


def machine_ceiling(repeat: int) -> dict[str, float]:
    """Binary over float MACs per second of the kernels on shapes that stay in L1/L2:
    what this CPU can give a binary layer at best, relative to a float one."""
    c, k, o, hw = 512, 3, 64, 8
    x = np.random.default_rng(1).standard_normal((1, c, hw, hw)).astype(np.float32)
    macs = o * c * k * k * hw * hw
    b = _node_ms(_layer_model(c, k, True, o, hw), x, repeat)
    f = _node_ms(_layer_model(c, k, False, o, hw), x, repeat)
    return {"binary_gmacs": macs / b / 1e6, "float_gmacs": macs / f / 1e6, "ratio": f / b}


# -- model sizes (paper Fig. 4a) ---------------------------------------------------------


def _layers_alexnet() -> list[tuple[int, int]]:
    # (outputs, weights per output) for conv1..fc8
    return [
        (96, 3 * 121),
        (256, 96 * 25),
        (384, 256 * 9),
        (384, 384 * 9),
        (256, 384 * 9),
        (4096, 9216),
        (4096, 4096),
        (1000, 4096),
    ]


def _layers_resnet18() -> list[tuple[int, int]]:
    rows = [(64, 3 * 49)]
    cin = 64
    for cout in (64, 128, 256, 512):
        for block in range(2):
            rows.append((cout, cin * 9))
            rows.append((cout, cout * 9))
            if block == 0 and cin != cout:
                rows.append((cout, cin))  # 1x1 downsample
            cin = cout
    return [*rows, (1000, 512)]


def _layers_vgg19() -> list[tuple[int, int]]:
    rows, cin = [], 3
    for cout, n in ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4)):
        for _ in range(n):
            rows.append((cout, cin * 9))
            cin = cout
    return [*rows, (4096, 25088), (4096, 4096), (1000, 4096)]


def model_sizes() -> dict[str, dict[str, int]]:
    """Bytes of the weights: float64, float32, and our packed format (first and last layers
    float32, the rest 1 bit per weight, rows padded to a byte, plus one float32 alpha per
    output)."""
    out = {}
    for name, rows in (
        ("AlexNet", _layers_alexnet()),
        ("ResNet-18", _layers_resnet18()),
        ("VGG-19", _layers_vgg19()),
    ):
        n = sum(o * w for o, w in rows)
        packed = 0
        for i, (o, w) in enumerate(rows):
            float_layer = i in (0, len(rows) - 1)
            packed += 4 * o * w if float_layer else o * ((w + 7) // 8) + 4 * o
        out[name] = {"float64": 8 * n, "float32": 4 * n, "packed": packed}
    return out


# -- plots --------------------------------------------------------------------------------


def _plot(result: dict[str, Any], outdir: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    title_tail = f"(isa {result['isa']}, 1 thread, 14x14 output, {FILTERS} filters)"
    ceiling = result["ceiling"]["ratio"]
    paths = []
    for key, xs, xlabel, fname in (
        (
            "channels",
            [p["c"] for p in result["channels"]],
            "input channels c (3x3 filter)",
            "speedup_channels.png",
        ),
        ("kernels", [p["k"] for p in result["kernels"]], "filter size w = h (c = 256)", "speedup_filter.png"),
    ):
        pts = result[key]
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ax.plot(xs, [p["paper_speedup"] for p in pts], "k--", label="paper: 64 c N_W / (c N_W + 64)")
        ax.plot(xs, [p["speedup_vs_engine_float"] for p in pts], "o-", label="measured vs engine float")
        if all(p["speedup_vs_torch"] is not None for p in pts):
            ax.plot(xs, [p["speedup_vs_torch"] for p in pts], "s-", label="measured vs PyTorch float32")
        ax.axhline(ceiling, color="tab:red", linestyle=":", label=f"machine ceiling {ceiling:.1f}x")
        if key == "channels":
            ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("speedup of binary over float (x)")
        ax.set_title(f"XNOR convolution speedup {title_tail}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        path = os.path.join(outdir, fname)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    sizes = result["model_sizes"]
    names = list(sizes)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    width = 0.27
    for j, (kind, label) in enumerate(
        (("float64", "double precision"), ("float32", "float32"), ("packed", "xnornet packed"))
    ):
        vals = [sizes[n][kind] / 2**20 for n in names]
        bars = ax.bar([i + (j - 1) * width for i in range(len(names))], vals, width, label=label)
        if kind == "packed":
            for i, bar in enumerate(bars):
                ratio = sizes[names[i]]["float32"] / sizes[names[i]]["packed"]
                ax.annotate(
                    f"1/{ratio:.1f}",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("weights (MiB)")
    ax.set_title("Model size: float vs binary (first and last layers float)", fontsize=9)
    ax.legend(fontsize=8)
    path = os.path.join(outdir, "model_sizes.png")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
    return paths


def sweep(channels: list[int], kernels: list[int], repeat: int, use_torch: bool) -> dict[str, Any]:
    torch = None
    if use_torch:
        try:
            import torch as torch_mod

            torch_mod.set_num_threads(1)
            torch = torch_mod
        except ImportError:
            torch = None
    result: dict[str, Any] = {
        "isa": resolve_isa(None),
        "threads": 1,
        "out_hw": OUT_HW,
        "filters": FILTERS,
        "torch_version": getattr(torch, "__version__", None),
        "channels": [],
        "kernels": [],
    }
    for c in channels:
        _progress(f"c = {c}, 3x3")
        result["channels"].append(measure_point(c, 3, repeat, torch))
    for k in kernels:
        _progress(f"c = 256, {k}x{k}")
        result["kernels"].append(measure_point(256, k, repeat, torch))
    _progress("machine ceiling probe")
    result["ceiling"] = machine_ceiling(repeat)
    result["model_sizes"] = model_sizes()
    return result


def run_sweep(args: argparse.Namespace) -> int:
    channels = CHANNELS if not getattr(args, "quick", False) else [1, 16, 256]
    kernels = KERNELS if not getattr(args, "quick", False) else [1, 3]
    result = sweep(channels, kernels, max(3, args.repeat), not args.no_torch)
    if args.plot:
        os.makedirs(args.plot, exist_ok=True)
        with open(os.path.join(args.plot, "sweep.json"), "w") as fh:
            json.dump(result, fh, indent=2)
        try:
            result["plots"] = _plot(result, args.plot)
        except ImportError:
            print(
                "xnornet bench: matplotlib is needed for --plot (pip install 'xnornet[plot]')",
                file=sys.stderr,
            )
            return 2
    print(json.dumps(result, indent=2) if args.json or args.plot else _table(result))
    return 0


def _table(r: dict[str, Any]) -> str:
    lines = [
        f"isa {r['isa']}, 1 thread, {r['out_hw']}x{r['out_hw']} output, {r['filters']} filters",
        f"{'c':>5} {'k':>3} {'binary ms':>10} {'float ms':>9} {'torch ms':>9} {'vs float':>9} "
        f"{'vs torch':>9} {'paper':>7}",
    ]
    for p in r["channels"] + r["kernels"]:
        t = "-" if p["torch_float_ms"] is None else f"{p['torch_float_ms']:.3f}"
        vt = "-" if p["speedup_vs_torch"] is None else f"{p['speedup_vs_torch']:.1f}"
        lines.append(
            f"{p['c']:>5} {p['k']:>3} {p['binary_ms']:>10.3f} {p['engine_float_ms']:>9.3f} {t:>9} "
            f"{p['speedup_vs_engine_float']:>9.1f} {vt:>9} {p['paper_speedup']:>7.1f}"
        )
    lines.append(f"machine ceiling (binary/float MAC rate): {r['ceiling']['ratio']:.1f}x")
    return "\n".join(lines)
