"""`xnornet info MODEL`: what a model file holds and how the engine will run it."""

from __future__ import annotations

import argparse
import json
import sys

from .errors import XnorError


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="path to a .xnor model file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--isa", default=None, help="scalar | avx2 | avx512 (default: XNORNET_ISA or best)")
    parser.add_argument("--labels", action="store_true", help="list every label")


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def run(name: str, args: argparse.Namespace) -> int:
    from .model import Model

    try:
        model = Model.load(args.model, isa=args.isa)
    except XnorError as exc:
        print(f"xnornet info: {args.model}: {exc.code}: {exc}", file=sys.stderr)
        return 1
    info = model.info
    if args.json:
        d = info.as_dict()
        d.update(isa=model.isa, threads=model.threads, source=model.source)
        if args.labels:
            d["labels"] = list(info.labels)
        print(json.dumps(d, indent=2))
        return 0
    c, h, w = info.input_shape
    print(f"model      {info.name or '(unnamed)'}  ({model.source})")
    print(f"format     version {info.format_version}, crc32 {info.crc32:08x}, file {_mb(info.file_bytes)}")
    print(
        f"input      {c}x{h}x{w} {info.color}, resize {info.resize}"
        f"{f' {info.resize_size}' if info.resize == 'shorter_crop' else ''}, scale {info.scale:.6g}, "
        f"mean {tuple(round(m, 4) for m in info.mean)}, std {tuple(round(s, 4) for s in info.std)}"
    )
    print(f"output     {info.output_size} {info.output_kind}, {len(info.labels)} labels")
    q = [n.name for n in info.nodes if n.op in ("qconv2d", "qlinear")]
    print(f"edges      {info.edges}" + (f" ({', '.join(q)})" if q else ""))
    ratio = info.weight_bytes_float32 / max(1, info.file_bytes)
    print(
        f"weights    packed {_mb(info.weight_bytes_packed)} vs float32 {_mb(info.weight_bytes_float32)} "
        f"(file is 1/{ratio:.1f} of float32); in memory {_mb(info.memory_bytes)}"
    )
    print(f"engine     isa {model.isa}, threads {model.threads}")
    print(f"\n{'#':>3}  {'name':<12} {'op':<10} {'mode':<5} {'inputs':<8} {'output':<16} {'MMACs':>9}  fused")
    for n in info.nodes:
        shape = "x".join(map(str, n.out_shape))
        mode = (n.mode or "") + ("+K" if n.use_k else "")
        print(
            f"{n.index:>3}  {n.name:<12} {n.op:<10} {mode:<5} {','.join(map(str, n.inputs)):<8} {shape:<16} "
            f"{n.macs / 1e6:>9.2f}  {'yes' if n.fused else ''}"
        )
    if args.labels:
        print("\nlabels: " + ", ".join(info.labels))
    return 0
