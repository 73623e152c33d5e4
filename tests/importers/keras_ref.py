"""An independent description of the three Larq Zoo models for the importer tests.

Written from Larq Zoo's published architectures, not from training/larq_zoo.py nor engine/reference.py: each
architecture is a small "Keras model" (named layers with seeded weights in Keras' file
order, and a program of ops over value ids), a numpy forward pass in NHWC with TF 'same'
padding and larq's quantizers, and a writer of Keras 2 `save_weights` HDF5 files in the
layout variants the importer must read.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


@dataclass
class KLayer:
    name: str
    cls: str
    weights: list[tuple[str, np.ndarray]] = field(default_factory=list)


@dataclass
class KModel:
    """layers: every layer in Keras' model order (the file order); ops: (op, layer, inputs, cfg)."""

    arch: str
    size: int
    layers: list[KLayer] = field(default_factory=list)
    ops: list[tuple[str, str, tuple[int, ...], dict[str, Any]]] = field(default_factory=list)
    _count: Counter = field(default_factory=Counter)

    def _layer(self, cls: str, base: str, weights: list[tuple[str, np.ndarray]]) -> KLayer:
        n = self._count[base]
        self._count[base] += 1
        name = base if n == 0 else f"{base}_{n}"
        lay = KLayer(name, cls, [(f"{name}/{w}:0", a) for w, a in weights])
        self.layers.append(lay)
        return lay

    def op(self, op: str, cls: str, base: str, inputs: tuple[int, ...], weights=(), **cfg: Any) -> int:
        lay = self._layer(cls, base, list(weights))
        self.ops.append((op, lay.name, inputs, cfg))
        return len(self.ops)  # value id: 0 = input, k = output of op k - 1

    def weights_of(self, name: str) -> list[np.ndarray]:
        return [a for _, a in next(l for l in self.layers if l.name == name).weights]


# ---------------------------------------------------------------------------------------
# The three architectures, seeded


class _Gen:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.scale = 1.0  # rough std of the value a BN normalizes

    def float_kernel(self, shape: tuple[int, ...]) -> np.ndarray:
        fan_in = int(np.prod(shape[:-1]))
        self.scale = 1.0
        return self.rng.standard_normal(shape, dtype=np.float32) / np.float32(np.sqrt(fan_in))

    def latent_kernel(self, shape: tuple[int, ...]) -> np.ndarray:
        self.scale = float(np.sqrt(np.prod(shape[:-1])))
        return self.rng.random(shape, dtype=np.float32) * np.float32(3.2) - np.float32(1.6)

    def bn(self, c: int, scale: bool, center: bool = True) -> list[tuple[str, np.ndarray]]:
        r, s = self.rng, self.scale
        out = []
        if scale:
            out.append(("gamma", r.uniform(0.5, 1.5, c).astype(np.float32)))
        if center:
            out.append(("beta", r.normal(0, 0.5, c).astype(np.float32)))
        out.append(("moving_mean", (r.normal(0, 0.3, c) * s).astype(np.float32)))
        out.append(("moving_variance", (r.uniform(0.5, 2.0, c) * s * s).astype(np.float32)))
        self.scale = 1.0
        return out


def _stem(
    m: KModel,
    g: _Gen,
    k: int,
    stride: int,
    c: int,
    *,
    pool_padding: str,
    bn_scale: bool,
    eps: tuple[float, float],
) -> int:
    """Conv2D k x k ('same') -> BN -> ReLU -> MaxPool 3/2 -> BN: XNORNet's and ResNetE18's first layers."""
    x = m.op(
        "conv",
        "Conv2D",
        "conv2d",
        (0,),
        [("kernel", g.float_kernel((k, k, 3, c)))],
        stride=stride,
        padding="same",
    )
    x = m.op("bn", "BatchNormalization", "batch_normalization", (x,), g.bn(c, bn_scale), eps=eps[0])
    x = m.op("relu", "Activation", "activation", (x,))
    x = m.op("maxpool", "MaxPooling2D", "max_pooling2d", (x,), padding=pool_padding)
    return m.op("bn", "BatchNormalization", "batch_normalization", (x,), g.bn(c, bn_scale), eps=eps[1])


def _qconv(
    m: KModel,
    g: _Gen,
    src: int,
    shape: tuple[int, int, int, int],
    *,
    stride: int = 1,
    padding: str = "same",
    input_q: str | None = "ste_sign",
    kernel_q: str = "ste_sign",
) -> int:
    """A QuantConv2D of latent kernel `shape` (kh, kw, in, out) on value `src`."""
    return m.op(
        "conv",
        "QuantConv2D",
        "quant_conv2d",
        (src,),
        [("kernel", g.latent_kernel(shape))],
        stride=stride,
        padding=padding,
        input_q=input_q,
        kernel_q=kernel_q,
    )


def xnornet(seed: int = 0, width: float = 1.0, classes: int = 1000) -> KModel:
    g, m = _Gen(seed), KModel("xnornet", 224)
    ch = lambda n: max(1, round(n * width))  # noqa: E731
    x = _stem(m, g, 11, 4, ch(96), pool_padding="valid", bn_scale=False, eps=(1e-5, 1e-4))
    prev = ch(96)
    for n, k, pool in [(256, 5, True), (384, 3, False), (384, 3, False), (256, 3, True), (4096, 6, False)]:
        x = _qconv(
            m, g, x, (k, k, prev, ch(n)), padding="valid" if k == 6 else "same", kernel_q="xnor_weight_scale"
        )
        if pool:
            x = m.op("maxpool", "MaxPooling2D", "max_pooling2d", (x,), padding="valid")
        x = m.op("bn", "BatchNormalization", "batch_normalization", (x,), g.bn(ch(n), False), eps=1e-4)
        prev = ch(n)
    x = _qconv(m, g, x, (1, 1, prev, ch(4096)), padding="valid", kernel_q="xnor_weight_scale")
    x = m.op("bn", "BatchNormalization", "batch_normalization", (x,), g.bn(ch(4096), False), eps=1e-3)
    x = m.op("relu", "Activation", "activation", (x,))
    x = m.op("flatten", "Flatten", "flatten", (x,))
    x = m.op("dense", "Dense", "dense", (x,), [("kernel", g.float_kernel((ch(4096), classes)))])
    m.op("softmax", "Activation", "activation", (x,))
    return m


def binary_alexnet(
    seed: int = 0, width: float = 1.0, classes: int = 1000, dense_as_conv: bool = True
) -> KModel:
    """dense_as_conv: v0.3.0 (Reshape to 1x1xF, QuantConv2D 1x1, Flatten at the end);
    False: v0.2.x (Flatten, QuantDense)."""
    g, m = _Gen(seed), KModel("binary-alexnet", 224)
    ch = lambda n: max(1, round(n * width))  # noqa: E731
    x, prev = 0, 3
    for i, (n, k, pool) in enumerate(
        [(64, 11, True), (192, 5, True), (384, 3, False), (384, 3, False), (256, 3, True)]
    ):
        x = _qconv(
            m, g, x, (k, k, prev, ch(n)), stride=4 if i == 0 else 1, input_q=None if i == 0 else "ste_sign"
        )
        if pool:
            x = m.op("maxpool", "MaxPooling2D", "max_pooling2d", (x,), padding="valid")
        x = m.op("bn", "BatchNormalization", "batch_normalization", (x,), g.bn(ch(n), False), eps=1e-3)
        prev = ch(n)
    fin = prev * 6 * 6
    # The dense layers: 1x1 QuantConv2D after a Reshape, or QuantDense after a Flatten.
    flatten, dense = ("Reshape", "QuantConv2D") if dense_as_conv else ("Flatten", "QuantDense")
    x = m.op("flatten", flatten, flatten.lower(), (x,))
    for n in (ch(4096), ch(4096), classes):
        kernel = g.latent_kernel((1, 1, fin, n) if dense_as_conv else (fin, n))
        layer = "quant_conv2d" if dense_as_conv else "quant_dense"
        x = m.op("dense", dense, layer, (x,), [("kernel", kernel)], input_q="ste_sign", kernel_q="ste_sign")
        x = m.op("bn", "BatchNormalization", "batch_normalization", (x,), g.bn(n, False), eps=1e-3)
        fin = n
    if dense_as_conv:
        x = m.op("identity", "Flatten", "flatten", (x,))
    m.op("softmax", "Activation", "activation", (x,))
    return m


def resnet_e18(seed: int = 0, width: float = 1.0, classes: int = 1000, size: int = 224) -> KModel:
    g, m = _Gen(seed), KModel("resnet-e18", size)
    ch = lambda n: max(1, round(n * width))  # noqa: E731
    x = _stem(m, g, 7, 2, ch(64), pool_padding="same", bn_scale=True, eps=(1e-5, 1e-5))
    prev = ch(64)
    for stage, filters in enumerate([64, 128, 256, 512]):
        for block in range(4):
            f = ch(filters)
            stride = 2 if stage > 0 and block == 0 else 1
            if prev != f:
                # Keras' model order here: avgpool; main binary conv, shortcut conv; main BN, shortcut BN.
                p = m.op("avgpool", "AveragePooling2D", "average_pooling2d", (x,))
                a = _qconv(m, g, x, (3, 3, prev, f), stride=stride)
                main_scale = g.scale
                q = m.op(
                    "conv",
                    "Conv2D",
                    "conv2d",
                    (p,),
                    [("kernel", g.float_kernel((1, 1, prev, f)))],
                    stride=1,
                    padding="valid",
                )
                g.scale = main_scale
                b = m.op("bn", "BatchNormalization", "batch_normalization", (a,), g.bn(f, True), eps=1e-5)
                s = m.op("bn", "BatchNormalization", "batch_normalization", (q,), g.bn(f, True), eps=1e-5)
            else:
                a = _qconv(m, g, x, (3, 3, prev, f))
                b = m.op("bn", "BatchNormalization", "batch_normalization", (a,), g.bn(f, True), eps=1e-5)
                s = x
            x = m.op("add", "Add", "add", (b, s))
            prev = f
    x = m.op("relu", "Activation", "activation", (x,))
    x = m.op("gap", "GlobalAveragePooling2D", "global_average_pooling2d", (x,))
    x = m.op(
        "dense",
        "Dense",
        "dense",
        (x,),
        [
            ("kernel", g.float_kernel((prev, classes))),
            ("bias", g.rng.normal(0, 0.1, classes).astype(np.float32)),
        ],
    )
    m.op("softmax", "Activation", "activation", (x,))
    return m


BUILDERS = {"xnornet": xnornet, "binary-alexnet": binary_alexnet, "resnet-e18": resnet_e18}


# ---------------------------------------------------------------------------------------
# numpy forward, NHWC float32 (larq semantics)


def ste_sign(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, np.float32(1), np.float32(-1)).astype(np.float32)


def xnor_weight_scale(w: np.ndarray) -> np.ndarray:
    c = np.clip(w, -1.0, 1.0)
    alpha = np.mean(np.abs(c), axis=tuple(range(w.ndim - 1)), keepdims=True)
    return (alpha * ste_sign(c)).astype(np.float32)


def same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def conv2d(x: np.ndarray, w: np.ndarray, stride: int, padding: str) -> np.ndarray:
    kh, kw = w.shape[:2]
    if padding == "same":
        (t, b), (l, r) = same_pads(x.shape[1], kh, stride), same_pads(x.shape[2], kw, stride)
        x = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))  # zeros: after the input quantizer
    win = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]  # N, Ho, Wo, C, kh, kw
    return np.tensordot(win, w, axes=([3, 4, 5], [2, 0, 1])).astype(np.float32)


def pool(x: np.ndarray, k: int, s: int, padding: str, kind: str) -> np.ndarray:
    if padding == "same":
        (t, b), (l, r) = same_pads(x.shape[1], k, s), same_pads(x.shape[2], k, s)
        x = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=-np.inf)
    win = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s]
    return (win.max(axis=(4, 5)) if kind == "max" else win.mean(axis=(4, 5))).astype(np.float32)


def forward(m: KModel, x_nhwc: np.ndarray) -> np.ndarray:
    """The pre-softmax logits [N, classes] (the graph's last op is the softmax)."""
    vals: list[np.ndarray] = [x_nhwc.astype(np.float32)]
    ops = m.ops[:-1] if m.ops[-1][0] == "softmax" else m.ops
    for op, name, ins, cfg in ops:
        x = vals[ins[0]]
        w = m.weights_of(name)
        if op in ("conv", "dense"):
            if cfg.get("input_q") == "ste_sign":
                x = ste_sign(x)
            k = w[0]
            if cfg.get("kernel_q") == "ste_sign":
                k = ste_sign(k)
            elif cfg.get("kernel_q") == "xnor_weight_scale":
                k = xnor_weight_scale(k)
            if op == "conv":
                y = conv2d(x, k, cfg.get("stride", 1), cfg.get("padding", "valid"))
            else:
                y = (x.reshape(x.shape[0], -1) @ k.reshape(-1, k.shape[-1])).astype(np.float32)
            if len(w) > 1:
                y = y + w[1]
        elif op == "bn":
            n = w[-1].shape[0]
            gamma = w[0] if len(w) == 4 else np.ones(n, np.float32)
            beta = w[-3] if len(w) >= 3 else np.zeros(n, np.float32)
            mean, var = w[-2], w[-1]
            y = ((x - mean) / np.sqrt(var + np.float32(cfg["eps"])) * gamma + beta).astype(np.float32)
        elif op == "relu":
            y = np.maximum(x, 0)
        elif op == "maxpool":
            y = pool(x, 3, 2, cfg["padding"], "max")
        elif op == "avgpool":
            y = pool(x, 2, 2, "valid", "avg")
        elif op == "gap":
            y = x.mean(axis=(1, 2))
        elif op == "flatten":  # Keras Flatten / Reshape((1, 1, -1)) of NHWC: (H, W, C) order
            y = x.reshape(x.shape[0], -1)
        elif op == "identity":
            y = x
        elif op == "add":
            y = x + vals[ins[1]]
        else:
            raise ValueError(op)
        vals.append(y)
    return vals[-1].reshape(x_nhwc.shape[0], -1)


# ---------------------------------------------------------------------------------------
# HDF5 writer: Keras 2 save_weights layouts


def _names_attr(attrs: Any, key: str, names: list[str], strings: str, chunks: int = 1) -> None:
    parts = np.array_split(np.arange(len(names)), chunks) if chunks > 1 else [np.arange(len(names))]
    for i, idx in enumerate(parts):
        sub = [names[j] for j in idx]
        k = f"{key}{i}" if chunks > 1 else key
        if not sub:
            attrs[k] = np.array([], dtype=np.float64)  # Keras: np.asarray([]) for weightless layers
        elif strings == "bytes":
            attrs[k] = np.array([s.encode("utf-8") for s in sub])  # fixed-length |S
        else:
            attrs.create(k, data=sub, dtype=h5py.string_dtype())  # variable-length str


def write_h5(
    path: Any,
    m: KModel,
    *,
    strings: str = "bytes",
    chunks: int = 1,
    weight_chunks: int = 1,
    nested: bool = False,
    top_level: bool = False,
    drop_layer: str | None = None,
    drop_group: str | None = None,
    reshape: tuple[str, tuple[int, ...]] | None = None,
) -> None:
    """strings: 'bytes' (old h5py) or 'str'; chunks: split layer_names into layer_names0..;
    weight_chunks: split every weighted layer's weight_names likewise; nested: a full-model save
    (all under model_weights); top_level: an empty top_level_model_weights group.
    drop_layer / drop_group / reshape: damage for the refusal tests."""
    with h5py.File(path, "w") as f:
        if nested:
            f.attrs["model_config"] = json.dumps({"class_name": "Functional", "config": {"name": m.arch}})
            root = f.create_group("model_weights")
        else:
            root = f
        names = [lay.name for lay in m.layers if lay.name != drop_layer]
        _names_attr(root.attrs, "layer_names", names, strings, chunks)
        root.attrs["backend"] = b"tensorflow" if strings == "bytes" else "tensorflow"
        root.attrs["keras_version"] = b"2.2.4-tf" if strings == "bytes" else "2.4.0"
        for lay in m.layers:
            if lay.name in (drop_layer, drop_group):
                continue
            g = root.create_group(lay.name)
            wn = [n for n, _ in lay.weights]
            _names_attr(g.attrs, "weight_names", wn, strings, weight_chunks if len(wn) > 1 else 1)
            for n, a in lay.weights:
                if reshape and reshape[0] == n:
                    a = np.resize(a, reshape[1]).astype(np.float32)
                g.create_dataset(n, data=a)
        if top_level:
            tl = root.create_group("top_level_model_weights")
            tl.attrs["weight_names"] = np.array([], dtype=np.float64)
