"""Benchmark the engine on XNOR AlexNet against PyTorch float32: `xnornet bench`.

The paper's XNOR AlexNet (seeded weights) against the same network in PyTorch float32, in one
run, medians after warm-up; `--arch` picks a Larq Zoo architecture instead, `--sweep` the
binary-convolution sweeps (benchmarks/conv_sweep.py).

Speed is reported as ratios against the baseline measured in the same process, so a
noisy shared machine shifts both sides together. Progress goes to stderr; the result
(a table, or one JSON object with --json) to stdout.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
from typing import Any

import numpy as np

from engine import format as fmt
from engine import reference
from engine.int8 import DEFAULT_EDGES, EDGES, Edges
from engine.model import Model, measure_ceilings, resolve_isa

from . import architectures, openvino_alexnet
from .timing import median_seconds

DEFAULT_RUNS = [(1, 1), (1, 2), (16, 2)]  # (batch, threads)
BINARY_CONVS = ("conv2", "conv3", "conv4", "conv5")


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--isa", default=None, help="scalar | avx2 | avx512 (default: XNORNET_ISA or best)")
    parser.add_argument("--threads", type=int, action="append", help="thread count(s) to run (repeatable)")
    parser.add_argument("--batch", type=int, action="append", help="batch size(s) to run (repeatable)")
    parser.add_argument("--mode", choices=("xnor", "bwn"), default="xnor")
    parser.add_argument(
        "--arch",
        default="alexnet",
        choices=("alexnet", "resnet-e18", "xnornet-larq", "binary-alexnet-larq"),
        help="network: the paper's AlexNet (default) or a Larq Zoo architecture (seeded weights)",
    )
    parser.add_argument(
        "--edges",
        action="append",
        choices=EDGES,
        help=f"precision of conv1 and fc8, repeatable to compare in one run (default {DEFAULT_EDGES})",
    )
    parser.add_argument("--repeat", type=int, default=15, help="timed repetitions per measurement (median)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch baseline")
    parser.add_argument(
        "--no-openvino", action="store_true", help="skip the OpenVINO baseline (its own BinaryConvolution)"
    )
    parser.add_argument(
        "--sweep", action="store_true", help="speedup sweeps of one binary conv (paper Fig. 4)"
    )
    parser.add_argument(
        "--ceilings",
        action="store_true",
        help="measure this CPU's FMA / int8 / popcount / bandwidth ceilings, each layer's share of its own",
    )
    parser.add_argument("--plot", metavar="DIR", help="with --sweep: write JSON and PNG plots into DIR")
    parser.add_argument("--quick", action="store_true", help="with --sweep: a few points only (for tests)")


def _progress(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _torch() -> Any | None:
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch_alexnet(torch: Any, classes: int = 1000) -> Any:
    """The float32 twin of architectures.alexnet(): every binary layer a float conv/linear."""
    nn = torch.nn
    layers: list[Any] = []
    for name, kind, s in architectures.alexnet_layer_specs():
        if kind == "conv":
            conv = nn.Conv2d(s["i"], s["o"], s["k"], s["s"], s["p"])
            if name == "conv1":
                layers += [conv, nn.BatchNorm2d(s["o"]), nn.ReLU()]
            else:
                layers += [nn.BatchNorm2d(s["i"]), conv, nn.ReLU()]
            if name in ("conv1", "conv2", "conv5"):
                layers.append(nn.MaxPool2d(3, 2))
            if name == "conv5":
                layers += [nn.BatchNorm2d(s["o"]), nn.Flatten()]
        else:
            o = classes if name == "fc8" else s["o"]
            if name == "fc7":
                layers.append(nn.BatchNorm1d(s["i"]))
            layers += [nn.Linear(s["i"], o)] + ([nn.ReLU()] if name != "fc8" else [])
    return nn.Sequential(*layers).eval()


def _torch_layer_ms(torch: Any, threads: int, repeat: int, warmup: int) -> dict[str, float]:
    """Each AlexNet conv alone in PyTorch float32 at batch 1 (for the per-layer ratios)."""
    torch.set_num_threads(threads)
    out = {}
    with torch.inference_mode():
        for name, kind, s in architectures.alexnet_layer_specs():
            if kind != "conv":
                continue
            conv = torch.nn.Conv2d(s["i"], s["o"], s["k"], s["s"], s["p"]).eval()
            x = torch.randn(1, s["i"], s["hw"], s["hw"])
            out[name] = 1e3 * median_seconds(functools.partial(conv, x), repeat, warmup)
    return out


def _layer_rows(model: Model, x1: np.ndarray, repeat: int, warmup: int) -> list[dict[str, Any]]:
    """Per-layer median times of batch-1 runs (fused nodes are timed in their host)."""
    for _ in range(warmup):
        model.infer_timed(x1)
    per_node = [model.infer_timed(x1)[1] for _ in range(repeat)]
    layers: list[dict[str, Any]] = []
    for node in model.info.nodes:
        if node.fused:
            continue
        ms = statistics.median([t[node.index] for t in per_node]) / 1e6
        layers.append(
            {
                "name": node.name,
                "kind": node.op + (f"/{node.mode}" if node.mode else ""),
                "ms": ms,
                "gops": (2 * node.macs / (ms * 1e-3) / 1e9) if node.macs and ms > 0 else 0.0,
            }
        )
    return layers


def bench_alexnet(args: argparse.Namespace) -> dict[str, Any]:
    isa = resolve_isa(args.isa)
    torch = None if args.no_torch else _torch()
    ov = None
    if not args.no_openvino and args.mode == "xnor":
        ov = openvino_alexnet.load()
        if ov is None:
            _progress(
                "OpenVINO is not installed (pip install './benchmarks[openvino]'): no OpenVINO baseline"
            )
    _progress(
        f"building seeded {args.mode.upper()} AlexNet (isa {isa}, torch {'yes' if torch else 'no'}, "
        f"openvino {'yes' if ov else 'no'})"
    )
    edges_list: list[Edges] = list(dict.fromkeys(args.edges or [DEFAULT_EDGES]))
    blobs = {e: fmt.to_bytes(architectures.alexnet(seed=0, mode=args.mode, edges=e)) for e in edges_list}
    runs = DEFAULT_RUNS
    if args.batch or args.threads:
        runs = [(b, t) for b in (args.batch or [1]) for t in (args.threads or [1, 2])]
    rng = np.random.default_rng(0)
    tnet = torch_alexnet(torch) if torch else None

    # The engine reads uint8 pixels (what the service hands it); PyTorch the float32 tensor
    # they normalize to. Each baseline is timed once per (batch, threads), beside every edges.
    results = []
    models: dict[tuple[str, int], Model] = {}
    for batch, threads in runs:
        pixels = rng.integers(0, 256, (batch, 227, 227, 3), dtype=np.uint8)
        base: dict[str, Any] = {"torch_float_ms_per_image": None}
        if torch is not None and tnet is not None:
            _progress(f"torch float32 batch {batch} threads {threads}")
            torch.set_num_threads(threads)
            tx = torch.from_numpy(reference.normalize(pixels, architectures.alexnet_input()))
            with torch.inference_mode():
                tt = median_seconds(functools.partial(tnet, tx), args.repeat, args.warmup)
            base["torch_float_ms_per_image"] = 1e3 * tt / batch
        if ov is not None:
            _progress(f"openvino batch {batch} threads {threads}")
            base["openvino_ms_per_image"] = openvino_alexnet.ms_per_image(
                ov, batch, threads, args.repeat, args.warmup
            )
        for edges in edges_list:
            model = models.setdefault(
                (edges, threads), Model.from_bytes(blobs[edges], threads=threads, isa=isa)
            )
            _progress(f"engine batch {batch} threads {threads} edges {edges}")
            eng_ms = (
                1e3 * median_seconds(functools.partial(model.infer, pixels), args.repeat, args.warmup) / batch
            )
            row: dict[str, Any] = {"batch": batch, "threads": threads, "edges": model.info.edges}
            row["engine_ms_per_image"] = eng_ms
            row.update(base)
            torch_ms = base["torch_float_ms_per_image"]
            row["speedup"] = torch_ms / eng_ms if torch_ms else None
            if "openvino_ms_per_image" in base:
                row["speedup_vs_openvino"] = base["openvino_ms_per_image"] / eng_ms
            results.append(row)

    # Per-layer times: batch 1 on the first run's thread count, for each edges.
    threads0 = runs[0][1]
    x1 = rng.integers(0, 256, (1, 227, 227, 3), dtype=np.uint8)
    by_edges = {e: _layer_rows(models[(e, threads0)], x1, args.repeat, args.warmup) for e in edges_list}
    layers = by_edges[edges_list[0]]
    model = models[(edges_list[0], threads0)]
    binary_speedup = None
    torch_layers = None
    if torch is not None:
        _progress(f"torch float32 per-layer convs, threads {threads0}")
        torch_layers = _torch_layer_ms(torch, threads0, args.repeat, args.warmup)
        eng_bin = sum(layer["ms"] for layer in layers if layer["name"] in BINARY_CONVS)
        binary_speedup = sum(torch_layers[n] for n in BINARY_CONVS) / eng_bin if eng_bin > 0 else None
    info = model.info
    return {
        "network": f"alexnet-{args.mode} (seeded weights, 227x227x3, 1000 classes)",
        "isa": model.isa,
        "edges": edges_list,
        "runs": results,
        "layers": layers,
        "layers_by_edges": by_edges,
        "model_bytes_by_edges": {e: len(b) for e, b in blobs.items()},
        "layers_threads": threads0,
        "torch_layers_ms": torch_layers,
        "binary_layers_speedup": binary_speedup,
        "model_bytes": info.file_bytes,
        "float32_model_bytes": info.weight_bytes_float32,
        "model_size_ratio": info.weight_bytes_float32 / info.file_bytes,
        "torch_version": getattr(torch, "__version__", None),
        "openvino_version": ov.__version__.split("-")[0] if ov is not None else None,
        "repeat": args.repeat,
    }


def _ceiling_kind(layer: dict[str, Any]) -> str | None:
    """Which compute ceiling bounds a layer: popcount for XNOR layers, int8 for 8-bit ones,
    FMA for float and BWN (add/subtract) ones; None for layers without multiply-adds."""
    if layer["gops"] <= 0:
        return None
    if layer["kind"].endswith("/xnor"):
        return "popcount"
    if layer["kind"].startswith(("qconv2d", "qlinear")):  # uint8 x int8 layers
        return "int8"
    return "fma"


def add_ceiling_shares(result: dict[str, Any], ceilings: dict[str, float], macs: dict[str, int]) -> None:
    """Each layer's share of its compute ceiling, and for fully connected layers (each weight read
    once per image at batch 1) of the cache read bandwidth, on the per-layer run's threads."""
    threads = result["layers_threads"]
    for layer in result["layers"]:
        kind = _ceiling_kind(layer)
        layer["ceiling"] = kind
        layer["compute_share"] = None
        layer["weight_gbps"] = None
        layer["bandwidth_share"] = None
        if kind is None or layer["ms"] <= 0:
            continue
        peak = ceilings[f"{kind}_gops"] * threads
        layer["compute_share"] = layer["gops"] / peak if peak > 0 else None
        if layer["kind"].startswith(("linear", "blinear", "qlinear")):
            bits = 1 if layer["kind"].startswith("blinear") else 8 if kind == "int8" else 32
            gbps = macs[layer["name"]] * bits / 8 / (layer["ms"] * 1e-3) / 1e9
            layer["weight_gbps"] = gbps
            layer["bandwidth_share"] = gbps / (ceilings["cache_read_gbps"] * threads)
    result["ceilings"] = ceilings


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def print_table(r: dict[str, Any]) -> None:
    print(
        f"{r['network']}, isa {r['isa']}, torch {r['torch_version'] or 'not installed'}, "
        f"openvino {r['openvino_version'] or 'not measured'}"
    )
    print(
        f"\n{'batch':>5} {'threads':>7} {'edges':>7} {'engine ms/img':>14} {'torch ms/img':>13} "
        f"{'speedup':>8} {'openvino ms/img':>16} {'vs openvino':>12}"
    )
    for row in r["runs"]:
        print(
            f"{row['batch']:>5} {row['threads']:>7} {row['edges']:>7} {row['engine_ms_per_image']:>14.3f} "
            f"{_fmt(row['torch_float_ms_per_image'], '.3f'):>13} {_fmt(row['speedup']):>8} "
            f"{_fmt(row.get('openvino_ms_per_image'), '.3f'):>16} {_fmt(row.get('speedup_vs_openvino')):>12}"
        )
    print(f"\nper layer (batch 1, {r['layers_threads']} thread(s)):")
    ceil = r.get("ceilings")
    if ceil:
        print(
            f"ceilings per thread: FMA {ceil['fma_gops']:.0f} GOPS, int8 {ceil['int8_gops']:.0f} GOPS, "
            f"popcount {ceil['popcount_gops']:.0f} GOPS, read {ceil['cache_read_gbps']:.1f} GB/s (8 MiB) / "
            f"{ceil['mem_read_gbps']:.1f} GB/s (128 MiB)"
        )
    extra = f" {'ceiling':>9} {'share':>6} {'GB/s':>7} {'bw share':>9}" if ceil else ""
    print(f"{'name':<10} {'kind':<14} {'ms':>8} {'GOPS':>8}{extra}")
    for layer in r["layers"]:
        line = f"{layer['name']:<10} {layer['kind']:<14} {layer['ms']:>8.3f} {layer['gops']:>8.1f}"
        if ceil:
            line += (
                f" {layer['ceiling'] or '-':>9} {_fmt(layer['compute_share'], '.0%'):>6} "
                f"{_fmt(layer['weight_gbps'], '.1f'):>7} {_fmt(layer['bandwidth_share'], '.0%'):>9}"
            )
        print(line)
    if len(r["edges"]) > 1:
        print(f"\nper layer ms by edges (batch 1, {r['layers_threads']} thread(s)):")
        print(f"{'name':<10} " + " ".join(f"{e:>9}" for e in r["edges"]))
        rows = {e: {layer["name"]: layer["ms"] for layer in r["layers_by_edges"][e]} for e in r["edges"]}
        for layer in r["layers"]:
            print(f"{layer['name']:<10} " + " ".join(f"{rows[e][layer['name']]:>9.3f}" for e in r["edges"]))
    print(f"\nbinary layers conv2..conv5 vs torch float32: {_fmt(r['binary_layers_speedup'])}x")
    print(
        f"model file {r['model_bytes'] / 1e6:.2f} MB vs float32 {r['float32_model_bytes'] / 1e6:.2f} MB "
        f"(1/{r['model_size_ratio']:.1f})"
    )


def run(name: str, args: argparse.Namespace) -> int:
    if args.sweep:
        from .conv_sweep import run_sweep

        return run_sweep(args)
    if args.arch != "alexnet":
        return _bench_larq(args)
    result = bench_alexnet(args)
    if args.ceilings:
        _progress(f"ceilings ({result['isa']}, one thread)")
        graph = architectures.alexnet(seed=0, mode=args.mode)
        macs = {n.name: n.macs for n in Model.from_bytes(fmt.to_bytes(graph), threads=1).info.nodes}
        add_ceiling_shares(result, measure_ceilings(result["isa"]), macs)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


def _bench_larq(args: argparse.Namespace) -> int:
    """Larq Zoo architectures (seeded weights) against their PyTorch float32 twins."""
    from .larq_speed import bench as larq_bench

    rows = [
        larq_bench(
            args.arch,
            threads=t,
            batch=b,
            repeat=args.repeat,
            warmup=args.warmup,
            with_torch=not args.no_torch,
            isa=args.isa,
        )
        for b in (args.batch or [1])
        for t in (args.threads or [1])
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        torch_ms = r["torch_float_ms_per_image"]
        torch_text = "-" if torch_ms is None else f"{torch_ms:.2f}"
        print(
            f"{r['arch']} batch {r['batch']} threads {r['threads']}: "
            f"engine {r['engine_ms_per_image']:.2f} ms/img, torch float32 {torch_text} ms/img"
        )
    return 0
