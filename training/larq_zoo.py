"""`xnornet import larq-zoo`: a Larq Zoo pretrained binary ImageNet model as a packed .xnor file.

Larq Zoo (github.com/larq/zoo, Apache-2.0) publishes Keras 2 HDF5 weight files of XNORNet,
BinaryAlexNet and BinaryResNetE18. The pieces: training/keras_hdf5.py reads the file (h5py
only, no TensorFlow), training/larq_arch.py pairs its layers with the architecture,
training/larq_convert.py builds the engine graph, training/larq_releases.py recognizes the
published files. This module joins them for a file given by hand and holds the command line.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine import format as fmt
from engine.graph import Graph
from engine.int8 import DEFAULT_EDGES, Edges, add_edges_argument

from .fetch import sha256_file
from .keras_hdf5 import LarqImportError
from .larq_arch import ARCHES, ArchConfig, canonical_arch
from .larq_convert import convert_file
from .larq_releases import check_release, release_table


@dataclass
class ImportResult:
    model: Graph
    sha256: str
    release: dict[str, Any] | None
    warnings: list[str]
    bytes_written: int = 0
    float_bytes: int = 0  # the float32 size of the file's weights


def import_file(
    path: str | os.PathLike[str],
    arch: str,
    out: str | os.PathLike[str] | None = None,
    *,
    cfg: ArchConfig = ArchConfig(),
    name: str | None = None,
    softmax: bool = True,
    edges: Edges = DEFAULT_EDGES,
) -> ImportResult:
    """Read a Larq Zoo HDF5 file, check it against `arch` and the known releases, and write the
    .xnor model to `out`."""
    arch = canonical_arch(arch)
    digest = sha256_file(path)
    release, warn = check_release(digest, arch)
    model, weights, notes = convert_file(path, arch, cfg=cfg, name=name, softmax=softmax, edges=edges)
    res = ImportResult(
        model,
        digest,
        release,
        [warn, *notes] if warn else notes,
        float_bytes=4 * sum(int(w.size) for ws in weights for w in ws),
    )
    if out is not None:
        res.bytes_written = fmt.write_model(model, out)
    return res


# ---------------------------------------------------------------------------------------
# Command line: xnornet import larq-zoo [--list] ARCH FILE.h5 -o OUT.xnor


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--list", action="store_true", help="print the known release files and their accuracy"
    )
    parser.add_argument(
        "arch", nargs="?", help=f"one of {', '.join(ARCHES)} (or XNORNet, BinaryAlexNet, BinaryResNetE18)"
    )
    parser.add_argument("file", nargs="?", help="the Larq Zoo .h5 weights file (see --list)")
    parser.add_argument("-o", "--output", help="the .xnor file to write")
    parser.add_argument("--name", default=None, help="model name (default: e.g. binary-resnet-e18-larq)")
    parser.add_argument("--classes", type=int, default=1000, help="output classes of the file (default 1000)")
    add_edges_argument(parser)


def run_cli(args: argparse.Namespace, log: Callable[[str], None] = print) -> int:
    if args.list:
        log(release_table())
        return 0
    if not args.arch or not args.file or not args.output:
        raise LarqImportError("usage: xnornet import larq-zoo ARCH FILE.h5 -o OUT.xnor (or --list)")
    res = import_file(
        args.file,
        args.arch,
        args.output,
        cfg=ArchConfig(classes=args.classes),
        name=args.name,
        edges=args.edges,
    )
    for w in res.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if res.release:
        r = res.release
        log(
            f"{args.file}: the {r['model']} release {r['tag']}/{r['file']} (sha256 ok; published "
            f"top-1 {r['top1']:.2f} %, top-5 {r['top5']:.2f} %)"
        )
    m = res.model
    log(
        f"wrote {args.output}: {m.name}, {len(m.nodes)} nodes, {len(m.labels)} labels, {args.edges} edges, "
        f"{res.bytes_written / 1e6:.2f} MB (float32 weights: {res.float_bytes / 1e6:.2f} MB)"
    )
    return 0
