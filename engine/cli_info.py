"""`xnornet info MODEL`: what a model file holds and how the engine will run it."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from .errors import XnorError
from .layout import CARD_FILE


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="path to a .xnor model file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--isa", default=None, help="scalar | avx2 | avx512 (default: XNORNET_ISA or best)")
    parser.add_argument("--labels", action="store_true", help="list every label")


def _card(model_path: str) -> dict[str, Any] | None:
    try:
        card = json.loads((Path(model_path).parent / CARD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def _card_lines(card: dict[str, Any], model_path: str) -> list[str]:
    """The model card as `info` rows (the published facts, and whether the file is the one
    the card describes)."""

    def get(*keys: str) -> Any:
        v: Any = card
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return v

    rows = [("title", get("title")), ("task", get("task", "summary"))]
    src = get("source") if isinstance(get("source"), dict) else {}
    origin = src.get("url") or src.get("trained_with")
    if origin:
        release = f" (release {src['release']})" if src.get("release") else ""
        rows.append(("source", f"{origin}{release}"))
    if src.get("sha256"):
        rows.append(("source sha256", src["sha256"]))
    rows.append(("license", get("license")))
    acc = get("accuracy")
    if isinstance(acc, dict) and acc.get("top1") is not None:
        top5 = f", top-5 {acc['top5']:.2f} %" if acc.get("top5") is not None else ""
        rows.append(
            ("accuracy", f"top-1 {acc['top1']:.2f} %{top5} on {acc.get('dataset')} ({acc.get('by')})")
        )
    rows.append(("preprocessing", get("preprocessing")))
    want = get("converted", "sha256")
    if want:
        have = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()
        rows.append(
            ("file sha256", f"{want} ({'matches this file' if have == want else 'DIFFERS from this file'})")
        )
    return [f"  {k:<14} {v}" for k, v in rows if v]


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
        d["card"] = _card(args.model)
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
    card = _card(args.model)
    if card is not None:
        print(f"\nmodel card ({Path(args.model).parent / CARD_FILE})")
        print("\n".join(_card_lines(card, args.model)))
    return 0
