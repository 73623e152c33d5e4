"""`xnornet import larq-zoo`: Larq Zoo's pretrained binary ImageNet models as packed .xnor files.

Larq Zoo (github.com/larq/zoo, Apache-2.0) publishes Keras 2 HDF5 weight files of XNORNet,
BinaryAlexNet and BinaryResNetE18 (the model catalogue, training/catalog.json, lists them). This
module reads such a file (training/keras_hdf5.py: h5py only, no TensorFlow), pairs its weighted
layers with the architecture by position and shape, as Keras' `load_weights` does, checks every shape, applies
larq's quantizers to the stored latent weights and writes the engine graph with
`engine.format`. Nothing here imports the C engine or PyTorch.

Quantizers (larq): `ste_sign` is sign with sign(0) = +1; `xnor_weight_scale` clips W to
[-1, 1], alpha = mean |W| over (kh, kw, in) per output channel, kernel = alpha * sign(W).
Binary inputs are binarized before the zero padding (padding contributes 0), which is the
engine's XNOR mode. Kernels are HWIO (kh, kw, in, out) and become OIHW here; Keras flattens
NHWC maps in (H, W, C) order, so the dense weights after a flatten are permuted to the
engine's (C, H, W) order.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import builders
from engine import format as fmt
from engine.graph import Graph, Node, infer_shapes
from engine.input_spec import InputSpec
from engine.int8 import DEFAULT_EDGES, Edges, add_edges_argument, with_edges

from .fetch import sha256_file
from .keras_hdf5 import FileLayer, LarqImportError, read_keras_weights

DATA_DIR = Path(__file__).with_name("data")
CLASSES_FILE = DATA_DIR / "imagenet_classes.txt"

# larq_zoo.preprocess_input: pixels 0..255, ImageNet mean/std per RGB channel.
LARQ_MEAN = (123.675, 116.28, 103.53)
LARQ_STD = (58.395, 57.12, 57.375)


ARCHES = ("xnornet", "binary-alexnet", "resnet-e18")
_DISPLAY = {"xnornet": "XNORNet", "binary-alexnet": "BinaryAlexNet", "resnet-e18": "BinaryResNetE18"}
_ALIASES = {
    "xnornet": "xnornet",
    "binaryalexnet": "binary-alexnet",
    "alexnet": "binary-alexnet",
    "resnete18": "resnet-e18",
    "binaryresnete18": "resnet-e18",
    "resnete": "resnet-e18",
}
DEFAULT_NAMES = {
    "xnornet": "xnornet-larq",
    "binary-alexnet": "binary-alexnet-larq",
    "resnet-e18": "binary-resnet-e18-larq",
}


def canonical_arch(name: str) -> str:
    """'XNORNet', 'binary_alexnet', 'BinaryResNetE18', 'resnet-e18', ... -> a key of ARCHES."""
    key = "".join(ch for ch in name.lower() if ch.isalnum())
    if key not in _ALIASES:
        raise LarqImportError(f"unknown Larq Zoo model {name!r}; expected one of {', '.join(ARCHES)}")
    return _ALIASES[key]


# ---------------------------------------------------------------------------------------
# Known releases


def releases() -> list[dict[str, Any]]:
    """The Larq Zoo files the shipped catalogue names: each model's file and, where listed, its
    feature extractor (include_top False: no classifier, never importable as a classifier)."""
    from .catalog import shipped

    out = []
    for e in shipped().entries:
        if e.importer != "larq-zoo":
            continue
        acc = e.accuracy or {}
        common = {"arch": e.architecture, "model": _DISPLAY[e.architecture], "name": e.name}
        out.append(
            {
                **common,
                "tag": e.source.release,
                "file": e.source.file,
                "url": e.source.url,
                "sha256": e.source.sha256,
                "top1": acc.get("top1"),
                "top5": acc.get("top5"),
                "include_top": True,
            }
        )
        if e.feature_extractor is not None:
            fe = e.feature_extractor
            out.append(
                {
                    **common,
                    "tag": fe.release,
                    "file": fe.file,
                    "url": fe.url,
                    "sha256": fe.sha256,
                    "include_top": False,
                }
            )
    return out


def release_table() -> str:
    """The `--list` table: model, release tag / file, expected accuracy, sha256."""
    rows = [("model", "arch", "release / file", "top-1", "top-5", "sha256")]
    for r in releases():
        if not r.get("include_top", True):
            continue
        rows.append(
            (
                r["model"],
                r["arch"],
                f"{r['tag']} / {r['file']}",
                f"{r['top1']:.2f} %",
                f"{r['top5']:.2f} %",
                r["sha256"],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(
        [
            *lines,
            "",
            "download, verify and install in one step: xnornet pull NAME (xnornet pull --list)",
            "or by hand: download the file, then xnornet import larq-zoo ARCH FILE -o OUT.xnor",
        ]
    )


def check_release(digest: str, arch: str) -> tuple[dict[str, Any] | None, str | None]:
    """(the matching release of `arch`, a warning or None). A file that is another model's
    release, or a no-top file, is refused: it can never import as `arch`."""
    for r in releases():
        if r["sha256"] != digest:
            continue
        if r["arch"] != arch:
            raise LarqImportError(
                f"this file is the {r['model']} release {r['tag']}/{r['file']}, "
                f"not {_DISPLAY[arch]}: run `xnornet import larq-zoo {r['arch']} ...`"
            )
        if not r.get("include_top", True):
            raise LarqImportError(
                f"this file is {r['tag']}/{r['file']}, the feature extractor without "
                "the classifier; download the weights file with the top (see --list)"
            )
        return r, None
    known = [r for r in releases() if r["arch"] == arch and r.get("include_top", True)]
    want = ", ".join(f"{r['tag']}/{r['file']}" for r in known)
    return None, (
        f"sha256 {digest} is not a known {_DISPLAY[arch]} release ({want}); importing anyway "
        "(retrained weights of the same architecture are fine, but the published accuracy "
        "does not apply)"
    )


# ---------------------------------------------------------------------------------------
# Architectures: the expected weighted layers (file order) and the engine graph


@dataclass(frozen=True)
class ArchConfig:
    """size: input side (224 for the releases); classes: outputs; width: channel multiplier
    (1.0 for the releases; smaller values exist for tests and benchmarks only)."""

    size: int = 224
    classes: int = 1000
    width: float = 1.0

    def ch(self, n: int) -> int:
        return max(1, round(n * self.width))


@dataclass(frozen=True)
class LayerSpec:
    """One weighted Keras layer: its kind and the accepted weight shapes (alternatives)."""

    kind: str  # conv | qconv | dense | qdense | bn
    what: str  # human description for messages
    shapes: tuple[tuple[tuple[int, ...], ...], ...]  # accepted shape lists (first = canonical)
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def accepts(self, shapes: Sequence[tuple[int, ...]]) -> bool:
        return tuple(tuple(s) for s in shapes) in self.shapes


def _conv(kind: str, kh: int, kw: int, cin: int, cout: int, what: str, bias: bool = False) -> LayerSpec:
    s: tuple[tuple[int, ...], ...] = ((kh, kw, cin, cout),) + (((cout,),) if bias else ())
    return LayerSpec(kind, what, (s,))


def _bn(c: int, eps: float, scale: bool, center: bool, what: str) -> LayerSpec:
    n = 2 + int(scale) + int(center)
    return LayerSpec(
        "bn", f"{what} ({n} weights of {c})", (((c,),) * n,), {"eps": eps, "scale": scale, "center": center}
    )


def _same(size: int, k: int, s: int) -> tuple[int, int, int]:
    """TF 'same': out = ceil(in / s), total = max((out - 1) s + k - in, 0), before = total // 2."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return out, total // 2, total - total // 2


def _valid(size: int, k: int, s: int) -> int:
    return (size - k) // s + 1


def layer_specs(arch: str, cfg: ArchConfig = ArchConfig()) -> list[LayerSpec]:
    arch = canonical_arch(arch)
    c = cfg.ch
    specs: list[LayerSpec] = []
    if arch == "xnornet":
        specs += [
            _conv("conv", 11, 11, 3, c(96), "Conv2D 96 11x11/4"),
            _bn(c(96), 1e-5, False, True, "BatchNormalization after conv 1"),
            _bn(c(96), 1e-4, False, True, "BatchNormalization after pool 1"),
        ]
        prev = c(96)
        for i, (n, k) in enumerate([(256, 5), (384, 3), (384, 3), (256, 3), (4096, 6)]):
            specs += [
                _conv("qconv", k, k, prev, c(n), f"QuantConv2D {n} {k}x{k} (binary conv {i + 2})"),
                _bn(c(n), 1e-4, False, True, f"BatchNormalization after binary conv {i + 2}"),
            ]
            prev = c(n)
        specs += [
            _conv("qconv", 1, 1, prev, c(4096), "QuantConv2D 4096 1x1 (binary conv 7)"),
            _bn(c(4096), 1e-3, False, True, "BatchNormalization after binary conv 7"),
            LayerSpec("dense", f"Dense {cfg.classes} without bias", (((c(4096), cfg.classes),),)),
        ]
    elif arch == "binary-alexnet":
        prev = 3
        for i, (n, k) in enumerate([(64, 11), (192, 5), (384, 3), (384, 3), (256, 3)]):
            specs += [
                _conv("qconv", k, k, prev, c(n), f"QuantConv2D {n} {k}x{k} (conv {i + 1})"),
                _bn(c(n), 1e-3, False, True, f"BatchNormalization after conv {i + 1}"),
            ]
            prev = c(n)
        side = _alexnet_final_side(cfg.size)
        fin = prev * side * side
        for i, n in enumerate([c(4096), c(4096), cfg.classes]):
            # v0.3.0: QuantConv2D 1x1 on the 1x1x9216 reshape; v0.2.x: QuantDense. Same values.
            specs += [
                LayerSpec(
                    "qdense",
                    f"QuantConv2D 1x1 / QuantDense {n} (dense {i + 1})",
                    (((1, 1, fin, n),), ((fin, n),)),
                ),
                _bn(n, 1e-3, False, True, f"BatchNormalization after dense {i + 1}"),
            ]
            fin = n
    else:  # resnet-e18
        specs += [
            _conv("conv", 7, 7, 3, c(64), "Conv2D 64 7x7/2 (stem)"),
            _bn(c(64), 1e-5, True, True, "BatchNormalization after the stem conv"),
            _bn(c(64), 1e-5, True, True, "BatchNormalization after the stem pool"),
        ]
        prev = c(64)
        for stage, filters in enumerate([64, 128, 256, 512]):
            for block in range(4):
                f = c(filters)
                where = f"stage {stage + 1} block {block + 1}"
                if prev != f:  # downsampling block: file order main conv, shortcut conv, main BN, shortcut BN
                    specs += [
                        _conv("qconv", 3, 3, prev, f, f"QuantConv2D {filters} 3x3 ({where})"),
                        _conv("conv", 1, 1, prev, f, f"shortcut Conv2D {filters} 1x1 ({where})"),
                        _bn(f, 1e-5, True, True, f"BatchNormalization ({where})"),
                        _bn(f, 1e-5, True, True, f"shortcut BatchNormalization ({where})"),
                    ]
                else:
                    specs += [
                        _conv("qconv", 3, 3, prev, f, f"QuantConv2D {filters} 3x3 ({where})"),
                        _bn(f, 1e-5, True, True, f"BatchNormalization ({where})"),
                    ]
                prev = f
        specs.append(
            LayerSpec("dense", f"Dense {cfg.classes} with bias", (((prev, cfg.classes), (cfg.classes,)),))
        )
    return specs


def _alexnet_final_side(size: int) -> int:
    s, _, _ = _same(size, 11, 4)
    s = _valid(s, 3, 2)
    s = _valid(s, 3, 2)  # conv 2 (same, stride 1) keeps the side; pool after it
    return _valid(s, 3, 2)  # conv 5 then pool


def match_layers(
    arch: str, layers: list[FileLayer], cfg: ArchConfig = ArchConfig(), source: str = "the file"
) -> list[list[np.ndarray]]:
    """Pair the file's weighted layers with the architecture by position; check every shape."""
    arch = canonical_arch(arch)
    specs = layer_specs(arch, cfg)
    model = _DISPLAY[arch]
    bad = next(
        (k for k, (spec, lay) in enumerate(zip(specs, layers, strict=False)) if not spec.accepts(lay.shapes)),
        None,
    )

    def mismatch(k: int) -> str:
        spec, lay = specs[k], layers[k]
        want = " or ".join(str(list(s)) for s in spec.shapes)
        return (
            f"weighted layer #{k} ({lay.name!r}) has weights of shapes {lay.shapes}; "
            f"{model} expects {spec.what} with shapes {want} there"
        )

    if len(layers) != len(specs):  # Keras' own first check: the number of layers with weights
        k = min(len(layers), len(specs))
        if bad is not None:
            detail = f"the first difference: {mismatch(bad)}"
        elif len(layers) < len(specs):
            detail = f"the first missing one is {specs[k].what}"
        else:
            detail = f"the first extra one is {layers[k].name!r}"
        raise LarqImportError(
            f"{source}: {len(layers)} layers with weights, {model} has {len(specs)}; {detail}"
        )
    if bad is not None:
        raise LarqImportError(f"{source}: {mismatch(bad)}. Is this a {model} file?")
    return [lay.weights for lay in layers]


def _oihw(w_hwio: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(w_hwio, np.float32).transpose(3, 2, 0, 1))


def _signs(w: np.ndarray) -> np.ndarray:
    """sign with sign(0) = sign(-0.0) = +1 (larq's ste_sign), as int8, same layout."""
    return (np.asarray(w) >= 0).view(np.int8) * np.int8(2) - np.int8(1)


def _signs_oihw(w_hwio: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(_signs(w_hwio).transpose(3, 2, 0, 1))  # transposing int8 is cheap


def xnor_weight_scale(w_hwio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """larq_zoo's xnor_weight_scale: signs (OIHW) and alpha = mean |clip(W, -1, 1)| per output.
    Clipping keeps the sign, so the signs come from W directly."""
    w = np.asarray(w_hwio, np.float32)
    clipped_abs = np.minimum(np.abs(w), np.float32(1.0))
    alpha = clipped_abs.reshape(-1, w.shape[-1]).mean(axis=0, dtype=np.float64).astype(np.float32)
    return _signs_oihw(w), alpha


def _bn_node(ws: list[np.ndarray], spec: LayerSpec, name: str, inputs: tuple[int, ...] = ()) -> Node:
    n = ws[-1].shape[0]
    it = iter(ws)
    gamma = next(it) if spec.params["scale"] else np.ones(n, np.float32)
    beta = next(it) if spec.params["center"] else np.zeros(n, np.float32)
    mean, var = next(it), next(it)
    if (var < 0).any():
        raise LarqImportError(f"{name}: negative moving variance")
    return builders.batchnorm(gamma, beta, mean, var, spec.params["eps"], name=name, inputs=inputs)


def _hwc_to_chw_rows(w_in_out: np.ndarray, c: int, h: int, w: int) -> np.ndarray:
    """Dense weights or signs (in = h*W*C + w*C + c, out) -> engine rows [out][c*H*W + h*W + w]."""
    o = w_in_out.shape[-1]
    return np.ascontiguousarray(w_in_out.reshape(h, w, c, o).transpose(3, 2, 0, 1).reshape(o, c * h * w))


class _Graph:
    """Appends nodes and tracks value ids (0 = input, k = output of node k - 1) and shapes."""

    def __init__(self, c: int, h: int, w: int) -> None:
        self.nodes: list[Node] = []
        self.shape: dict[int, tuple[int, ...]] = {0: (c, h, w)}

    @property
    def last(self) -> int:
        return len(self.nodes)

    def add(self, node: Node, shape: tuple[int, ...]) -> int:
        self.nodes.append(node)
        self.shape[self.last] = shape
        return self.last


def build_nodes(
    arch: str, weights: list[list[np.ndarray]], cfg: ArchConfig = ArchConfig(), softmax: bool = True
) -> list[Node]:
    """The engine graph of `arch` from its weighted layers (file order, shapes already checked)."""
    arch = canonical_arch(arch)
    specs = layer_specs(arch, cfg)
    if len(weights) != len(specs):
        raise LarqImportError(f"{len(weights)} weighted layers, {_DISPLAY[arch]} has {len(specs)}")
    pos = iter(range(len(specs)))

    def take(kind: str) -> tuple[list[np.ndarray], LayerSpec]:
        k = next(pos)
        assert specs[k].kind == kind, (k, specs[k].kind, kind)
        return weights[k], specs[k]

    g = _Graph(3, cfg.size, cfg.size)
    size = cfg.size

    def bconv(
        kind: str,
        ws: list[np.ndarray],
        stride: int,
        same: bool,
        mode: str,
        scaled: bool,
        name: str,
        inputs: tuple[int, ...] = (),
    ) -> None:
        nonlocal size
        kh = ws[0].shape[0]
        if same:
            out, b, a = _same(size, kh, stride)
            pads = (b, b, a, a)
        else:
            out, pads = _valid(size, kh, stride), (0, 0, 0, 0)
        if scaled:
            signs, alpha = xnor_weight_scale(ws[0])
        else:
            signs, alpha = _signs_oihw(ws[0]), np.ones(ws[0].shape[-1], np.float32)
        size = out
        g.add(
            builders.bconv2d(signs, alpha, stride=stride, padding=pads, mode=mode, name=name, inputs=inputs),
            (signs.shape[0], out, out),
        )

    def maxpool(name: str, same: bool = False) -> None:
        nonlocal size
        if same:
            out, b, a = _same(size, 3, 2)
            pads = (b, b, a, a)
        else:
            out, pads = _valid(size, 3, 2), (0, 0, 0, 0)
        g.add(builders.maxpool(3, 2, padding=pads, name=name), (g.shape[g.last][0], out, out))
        size = out

    def bn(name: str, inputs: tuple[int, ...] = ()) -> int:
        ws, spec = take("bn")
        src = inputs[0] if inputs else g.last
        return g.add(_bn_node(ws, spec, name, inputs), g.shape[src])

    def simple(op: str, name: str) -> None:
        shape = g.shape[g.last]
        if op == "flatten":
            shape = (int(np.prod(shape)),)
        g.add(builders.simple(op, name=name), shape)

    if arch == "xnornet":
        ws, _ = take("conv")
        out, b, a = _same(size, 11, 4)
        g.add(
            builders.conv2d(_oihw(ws[0]), stride=4, padding=(b, b, a, a), name="conv1"),
            (ws[0].shape[-1], out, out),
        )
        size = out
        bn("bn1")
        simple("relu", "relu1")
        maxpool("pool1")
        bn("bn1b")
        for i, pool in zip(range(2, 7), (True, False, False, True, False), strict=True):
            ws, _ = take("qconv")
            bconv("qconv", ws, 1, i != 6, "xnor", True, f"bconv{i}")
            if pool:
                maxpool(f"pool{i}")
            bn(f"bn{i}")
        ws, _ = take("qconv")
        bconv("qconv", ws, 1, False, "xnor", True, "bconv7")
        bn("bn7")
        simple("relu", "relu7")
        simple("flatten", "flatten")  # a 1x1 map: (H, W, C) and (C, H, W) orders agree
        ws, _ = take("dense")
        g.add(builders.linear(np.ascontiguousarray(ws[0].T), name="fc8"), (ws[0].shape[1],))
    elif arch == "binary-alexnet":
        for i, pool in zip(range(1, 6), (True, True, False, False, True), strict=True):
            ws, _ = take("qconv")
            stride = 4 if i == 1 else 1
            # The first conv has binary weights (no scale) on the real-valued image: BWN, alpha 1.
            bconv("qconv", ws, stride, True, "bwn" if i == 1 else "xnor", False, f"bconv{i}")
            if pool:
                maxpool(f"pool{i}")
            bn(f"bn{i}")
        c, h, w = g.shape[g.last]
        simple("flatten", "flatten")
        for i in range(1, 4):
            ws, _ = take("qdense")
            signs = _signs(ws[0].reshape(-1, ws[0].shape[-1]))  # (in, out), in = HWC order for i = 1
            rows = _hwc_to_chw_rows(signs, c, h, w) if i == 1 else np.ascontiguousarray(signs.T)
            g.add(
                builders.blinear(rows, np.ones(rows.shape[0], np.float32), mode="xnor", name=f"bfc{i}"),
                (rows.shape[0],),
            )
            bn(f"bnfc{i}")
    else:  # resnet-e18
        ws, _ = take("conv")
        out, b, a = _same(size, 7, 2)
        g.add(
            builders.conv2d(_oihw(ws[0]), stride=2, padding=(b, b, a, a), name="stem"),
            (ws[0].shape[-1], out, out),
        )
        size = out
        bn("stem_bn")
        simple("relu", "stem_relu")
        maxpool("stem_pool", same=True)  # padded cells are -inf: they never win the max
        x = bn("stem_pool_bn")
        for stage, filters in enumerate([64, 128, 256, 512]):
            for block in range(4):
                f = cfg.ch(filters)
                tag = f"s{stage + 1}b{block + 1}"
                cin, hin, _ = g.shape[x]
                stride = 2 if stage > 0 and block == 0 else 1
                ws_main, _ = take("qconv")
                size = hin
                bconv("qconv", ws_main, stride, True, "xnor", False, f"{tag}_bconv", inputs=(x,))
                main_conv = g.last
                if cin != f:
                    ws_short, _ = take("conv")
                    ph = _valid(hin, 2, 2)
                    g.add(builders.avgpool(2, 2, name=f"{tag}_sc_pool", inputs=(x,)), (cin, ph, ph))
                    g.add(builders.conv2d(_oihw(ws_short[0]), name=f"{tag}_sc_conv"), (f, ph, ph))
                    short_conv = g.last
                    y = bn(f"{tag}_bn", inputs=(main_conv,))
                    s = bn(f"{tag}_sc_bn", inputs=(short_conv,))
                else:
                    y = bn(f"{tag}_bn", inputs=(main_conv,))
                    s = x
                x = g.add(builders.simple("add", name=f"{tag}_add", inputs=(y, s)), g.shape[y])
        simple("relu", "relu")
        c, h, w = g.shape[g.last]
        g.add(builders.avgpool((h, w), (h, w), name="global_pool"), (c, 1, 1))
        simple("flatten", "flatten")
        ws, _ = take("dense")
        g.add(builders.linear(np.ascontiguousarray(ws[0].T), ws[1], name="fc"), (ws[0].shape[1],))
    if next(pos, None) is not None:  # pragma: no cover - spec/builder invariant
        raise AssertionError("unused weighted layers")
    if softmax:
        g.add(builders.simple("softmax", name="softmax"), g.shape[g.last])
    return g.nodes


def input_spec(cfg: ArchConfig = ArchConfig()) -> InputSpec:
    """larq_zoo.preprocess_input as resize policy 2 (engine/FORMAT.md): crop 0.875, legacy bicubic."""
    return InputSpec(3, cfg.size, cfg.size, "rgb", "central_crop_bicubic", 0, 1.0, LARQ_MEAN, LARQ_STD)


def imagenet_labels(classes: int = 1000) -> tuple[list[str], str | None]:
    """(labels, a note when the class names file is absent or does not fit)."""
    if CLASSES_FILE.is_file():
        names = [ln.strip() for ln in CLASSES_FILE.read_text(encoding="utf-8").splitlines() if ln.strip()]
        if len(names) == classes:
            return names, None
        note = f"{CLASSES_FILE} has {len(names)} names for {classes} classes"
    else:
        note = f"{CLASSES_FILE} is missing"
    return [
        f"class_{i:04d}" for i in range(classes)
    ], f"{note}: labels are class_0000 .. class_{classes - 1:04d}"


def build_model(
    arch: str,
    weights: list[list[np.ndarray]],
    cfg: ArchConfig = ArchConfig(),
    *,
    name: str | None = None,
    labels: list[str] | None = None,
    softmax: bool = True,
) -> Graph:
    arch = canonical_arch(arch)
    nodes = build_nodes(arch, weights, cfg, softmax=softmax)
    if labels is None:
        labels, _ = imagenet_labels(cfg.classes)
    model = Graph(input_spec(cfg), nodes, labels, name or DEFAULT_NAMES[arch])
    try:
        infer_shapes(model)
    except fmt.FormatError as exc:
        raise LarqImportError(f"{_DISPLAY[arch]} at input {cfg.size}x{cfg.size}: {exc}") from None
    return model


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
    check_sha: bool = True,
    edges: Edges = DEFAULT_EDGES,
) -> ImportResult:
    """Read a Larq Zoo HDF5 file, check it against `arch`, and write the .xnor model to `out`."""
    arch = canonical_arch(arch)
    warnings: list[str] = []
    digest = sha256_file(path) if check_sha else ""
    release = None
    if check_sha:
        release, warn = check_release(digest, arch)
        if warn:
            warnings.append(warn)
    layers, _meta = read_keras_weights(path)
    weights = match_layers(arch, layers, cfg, source=os.fspath(path))
    labels, note = imagenet_labels(cfg.classes)
    if note:
        warnings.append(note)
    model = with_edges(build_model(arch, weights, cfg, name=name, labels=labels, softmax=softmax), edges)
    res = ImportResult(
        model, digest, release, warnings, float_bytes=4 * sum(int(w.size) for ws in weights for w in ws)
    )
    if out is not None:
        res.bytes_written = fmt.write_model(model, out)
    return res


# ---------------------------------------------------------------------------------------
# Seeded weights (tests, benchmarks): the same layers as a release file, no file involved


def seeded_weights(arch: str, cfg: ArchConfig = ArchConfig(), seed: int = 0) -> list[list[np.ndarray]]:
    """Random weights in the file's layout, scaled so activations stay O(1) through the net
    (BN statistics roughly match the preceding layer's output scale)."""
    rng = np.random.default_rng(seed)
    out: list[list[np.ndarray]] = []
    prev_scale = 1.0
    for spec in layer_specs(arch, cfg):
        shapes = spec.shapes[0]
        if spec.kind == "bn":
            n = shapes[0][0]
            arrs = []
            if spec.params["scale"]:
                arrs.append(rng.uniform(0.5, 1.5, n).astype(np.float32))
            if spec.params["center"]:
                arrs.append(rng.normal(0.0, 0.5, n).astype(np.float32))
            arrs.append((rng.normal(0.0, 0.3, n) * prev_scale).astype(np.float32))
            arrs.append((rng.uniform(0.5, 2.0, n) * prev_scale**2).astype(np.float32))
            out.append(arrs)
            prev_scale = 1.0
            continue
        kshape = shapes[0]
        fan_in = int(np.prod(kshape[:-1]))
        if spec.kind in ("qconv", "qdense"):
            w = rng.random(kshape, dtype=np.float32) * np.float32(3.0) - np.float32(1.5)
            prev_scale = float(np.sqrt(fan_in))  # sums of +-1 (times alpha ~ 0.67 for XNORNet)
        else:
            w = rng.standard_normal(kshape, dtype=np.float32) / np.float32(np.sqrt(fan_in))
            prev_scale = 1.0
        arrs = [w] + [rng.normal(0.0, 0.1, s).astype(np.float32) for s in shapes[1:]]
        out.append(arrs)
    return out


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
