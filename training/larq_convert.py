"""A Larq Zoo weights file as an engine graph: larq's quantizers applied to the stored latent
weights, the layers laid out as the engine's nodes.

Quantizers (larq): `ste_sign` is sign with sign(0) = +1; `xnor_weight_scale` clips W to
[-1, 1], alpha = mean |W| over (kh, kw, in) per output channel, kernel = alpha * sign(W).
Binary inputs are binarized before the zero padding (padding contributes 0), which is the
engine's XNOR mode. Kernels are HWIO (kh, kw, in, out) and become OIHW here; Keras flattens
NHWC maps in (H, W, C) order, so the dense weights after a flatten are permuted to the
engine's (C, H, W) order. Nothing here imports the C engine, PyTorch or the catalogue.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine import builders
from engine import format as fmt
from engine.graph import Graph, Node, infer_shapes
from engine.input_spec import InputSpec
from engine.int8 import DEFAULT_EDGES, Edges, with_edges

from .keras_hdf5 import LarqImportError, read_keras_weights
from .larq_arch import (
    DEFAULT_NAMES,
    DISPLAY,
    ArchConfig,
    LayerSpec,
    canonical_arch,
    layer_specs,
    match_layers,
    same_padding,
    valid_side,
)

DATA_DIR = Path(__file__).with_name("data")
CLASSES_FILE = DATA_DIR / "imagenet_classes.txt"

# larq_zoo.preprocess_input: pixels 0..255, ImageNet mean/std per RGB channel.
LARQ_MEAN = (123.675, 116.28, 103.53)
LARQ_STD = (58.395, 57.12, 57.375)


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


def _window(size: int, k: int, stride: int, same: bool) -> tuple[int, tuple[int, int, int, int]]:
    """(output side, engine padding (top, left, bottom, right)) of a k x k window: TF 'same' or 'valid'."""
    if not same:
        return valid_side(size, k, stride), (0, 0, 0, 0)
    out, before, after = same_padding(size, k, stride)
    return out, (before, before, after, after)


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
        raise LarqImportError(f"{len(weights)} weighted layers, {DISPLAY[arch]} has {len(specs)}")
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
        out, pads = _window(size, ws[0].shape[0], stride, same)
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
        out, pads = _window(size, 3, 2, same)
        g.add(builders.maxpool(3, 2, padding=pads, name=name), (g.shape[g.last][0], out, out))
        size = out

    def stem_conv(stride: int, name: str) -> None:  # float weights, TF 'same' padding
        nonlocal size
        ws, _ = take("conv")
        out, pads = _window(size, ws[0].shape[0], stride, True)
        g.add(
            builders.conv2d(_oihw(ws[0]), stride=stride, padding=pads, name=name), (ws[0].shape[-1], out, out)
        )
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
        stem_conv(4, "conv1")
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
        stem_conv(2, "stem")
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
                    ph = valid_side(hin, 2, 2)
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
        raise LarqImportError(f"{DISPLAY[arch]} at input {cfg.size}x{cfg.size}: {exc}") from None
    return model


def convert_file(
    path: str | os.PathLike[str],
    arch: str,
    *,
    cfg: ArchConfig = ArchConfig(),
    name: str | None = None,
    softmax: bool = True,
    edges: Edges = DEFAULT_EDGES,
) -> tuple[Graph, list[list[np.ndarray]], list[str]]:
    """(the engine graph, the file's weights, warnings) of a Larq Zoo HDF5 file read as `arch`."""
    arch = canonical_arch(arch)
    layers, _meta = read_keras_weights(path)
    weights = match_layers(arch, layers, cfg, source=os.fspath(path))
    labels, note = imagenet_labels(cfg.classes)
    model = with_edges(build_model(arch, weights, cfg, name=name, labels=labels, softmax=softmax), edges)
    return model, weights, [note] if note else []
