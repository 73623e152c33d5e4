"""The numpy oracle: every op of engine/FORMAT.md, short and readable.

Tensors are NCHW float32 (4-D values) or NF float32 (2-D values), batch first. Where
FORMAT.md fixes an order of float operations (batch norm, the XNOR epilogue, K), this
code performs exactly those float32 operations so the C engine can match it bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, overload

import numpy as np

from .graph import QLINEAR_GROUP, Graph, Node, pool_out
from .input_spec import InputSpec

F32 = np.float32


def sign(x: np.ndarray) -> np.ndarray:
    """+1 where x >= 0 (so sign(0) = +1), else -1."""
    return np.where(x >= 0, F32(1), F32(-1)).astype(F32)


def _pad(x: np.ndarray, node: Node, value: float = 0.0) -> np.ndarray:
    pt, pl, pb, pr = node.p("pt"), node.p("pl"), node.p("pb"), node.p("pr")
    return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=value)


def _windows(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, oh: int, ow: int) -> np.ndarray:
    """[N, C, oh, ow, kh, kw] view of the sliding windows of a padded NCHW array."""
    v = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    return v[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]


def _conv_out_size(x: np.ndarray, node: Node) -> tuple[int, int]:
    oh = pool_out(x.shape[2], node.p("kh"), node.p("sh"), node.p("pt"), node.p("pb"), False)
    ow = pool_out(x.shape[3], node.p("kw"), node.p("sw"), node.p("pl"), node.p("pr"), False)
    return oh, ow


def _correlate(x: np.ndarray, w: np.ndarray, node: Node) -> np.ndarray:
    """sum over c, ky, kx of padded x * w, in float64 (exact for +-1 data): [N, O, oh, ow]."""
    oh, ow = _conv_out_size(x, node)
    win = _windows(_pad(x, node), node.p("kh"), node.p("kw"), node.p("sh"), node.p("sw"), oh, ow)
    n = x.shape[0]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, -1).astype(np.float64)
    out = cols @ w.reshape(w.shape[0], -1).astype(np.float64).T
    return out.reshape(n, oh, ow, w.shape[0]).transpose(0, 3, 1, 2)


def conv2d(x: np.ndarray, node: Node) -> np.ndarray:
    y = _correlate(x, node.tensors["weight"], node).astype(F32)
    if node.p("has_bias"):
        y = y + node.tensors["bias"][None, :, None, None]
    return y.astype(F32)


def k_map(x: np.ndarray, node: Node) -> np.ndarray:
    """The paper's K: A = mean over channels of |x| (sequential float32 sum), box-filtered
    with the conv's kernel, stride and zero padding, divisor kh*kw. [N, 1, oh, ow]."""
    a = np.zeros((x.shape[0], 1, x.shape[2], x.shape[3]), F32)
    for c in range(x.shape[1]):
        a = (a + np.abs(x[:, c : c + 1])).astype(F32)
    a = (a / F32(x.shape[1])).astype(F32)
    oh, ow = _conv_out_size(x, node)
    kh, kw, sh, sw = node.p("kh"), node.p("kw"), node.p("sh"), node.p("sw")
    ap = _pad(a, node)
    k = np.zeros((x.shape[0], 1, oh, ow), F32)
    for ky in range(kh):
        for kx in range(kw):
            k = (k + ap[:, :, ky : ky + (oh - 1) * sh + 1 : sh, kx : kx + (ow - 1) * sw + 1 : sw]).astype(F32)
    return (k / F32(kh * kw)).astype(F32)


def binary_dot(x: np.ndarray, node: Node) -> np.ndarray:
    """XNOR mode's integer dot products sign(x) . w over in-bounds taps (int64)."""
    return np.rint(_correlate(sign(x), node.tensors["weight"].astype(F32), node)).astype(np.int64)


def _binary_epilogue(acc: np.ndarray, node: Node, k: np.ndarray | None, shape4: bool) -> np.ndarray:
    bshape = (1, -1, 1, 1) if shape4 else (1, -1)
    y = (acc.astype(F32) * node.tensors["alpha"].reshape(bshape)).astype(F32)
    if k is not None:
        y = (y * k).astype(F32)
    if node.p("has_bias"):
        y = (y + node.tensors["bias"].reshape(bshape)).astype(F32)
    return y


def bconv2d(x: np.ndarray, node: Node) -> np.ndarray:
    if node.mode == "bwn":
        acc = _correlate(x, node.tensors["weight"].astype(F32), node).astype(F32)
        return _binary_epilogue(acc, node, None, True)
    k = k_map(x, node) if node.p("use_k") else None
    return _binary_epilogue(binary_dot(x, node), node, k, True)


def linear(x: np.ndarray, node: Node) -> np.ndarray:
    y = (x.astype(np.float64) @ node.tensors["weight"].astype(np.float64).T).astype(F32)
    if node.p("has_bias"):
        y = y + node.tensors["bias"][None, :]
    return y.astype(F32)


def blinear(x: np.ndarray, node: Node) -> np.ndarray:
    w = node.tensors["weight"].astype(np.float64)
    if node.mode == "bwn":
        acc = (x.astype(np.float64) @ w.T).astype(F32)
        return _binary_epilogue(acc, node, None, False)
    acc = np.rint(sign(x).astype(np.float64) @ w.T).astype(np.int64)
    k = None
    if node.p("use_k"):
        a = np.zeros((x.shape[0], 1), F32)
        for f in range(x.shape[1]):
            a = (a + np.abs(x[:, f : f + 1])).astype(F32)
        k = (a / F32(x.shape[1])).astype(F32)
    return _binary_epilogue(acc, node, k, False)


def _channel_f32(values: tuple[float, ...], channels: int, fill: float) -> np.ndarray:
    out = np.full(channels, fill, F32)
    n = min(channels, 4, len(values))
    out[:n] = np.asarray(values[:n], F32)
    return out


def normalize(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 NHWC pixels -> float32 NCHW, x = (p * scale - mean[c]) / std[c] in float32."""
    c = pixels.shape[-1]
    x = (pixels.astype(F32) * F32(spec.scale)).astype(F32)
    x = ((x - _channel_f32(spec.mean, c, 0.0)) / _channel_f32(spec.std, c, 1.0)).astype(F32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def to_pixels(x: np.ndarray, spec: InputSpec) -> np.ndarray:
    """The pixels a qconv2d reads from a float32 NCHW input: rint((x * std[c] + mean[c]) / scale),
    NaN -> 0, clamped to 0..255 (normalized uint8 pixels come back exactly)."""
    c = x.shape[1]
    std = _channel_f32(spec.std, c, 1.0)[None, :, None, None]
    mean = _channel_f32(spec.mean, c, 0.0)[None, :, None, None]
    with np.errstate(invalid="ignore", over="ignore"):
        v = ((x.astype(F32) * std).astype(F32) + mean).astype(F32)
        v = (v / F32(spec.scale)).astype(F32)
        v = np.where(v > 0, v, F32(0))
        v = np.minimum(v, F32(255))
    return np.rint(v).astype(np.uint8)


def qconv2d(pixels: np.ndarray, node: Node) -> np.ndarray:
    """int8 first layer on uint8 NCHW pixels: acc = sum of in-bounds taps of p * q (int32),
    corr = bias (or 0) plus the in-bounds taps' offsets in row-major order, float32 each step;
    out = float32(acc) * scale[o] + corr."""
    t = node.tensors
    acc = np.rint(_correlate(pixels.astype(F32), t["weight"].astype(F32), node)).astype(np.int64)
    _, o, oh, ow = acc.shape
    h, w = pixels.shape[2], pixels.shape[3]
    kh, kw, sh, sw = node.p("kh"), node.p("kw"), node.p("sh"), node.p("sw")
    iy = np.arange(oh) * sh - node.p("pt")
    ix = np.arange(ow) * sw - node.p("pl")
    bias = t["bias"] if node.p("has_bias") else np.zeros(o, F32)
    corr = np.broadcast_to(bias[:, None, None], (o, oh, ow)).astype(F32)
    for ky in range(kh):
        row_ok = (iy + ky >= 0) & (iy + ky < h)
        for kx in range(kw):
            inb = row_ok[:, None] & ((ix + kx >= 0) & (ix + kx < w))[None, :]
            corr = np.where(inb[None], (corr + t["offset"][:, ky, kx, None, None]).astype(F32), corr)
    y = (acc.astype(F32) * t["scale"][None, :, None, None]).astype(F32)
    return (y + corr[None]).astype(F32)


def quantize_activations(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """qlinear's per-sample quantization of [N, F] float32 in groups of QLINEAR_GROUP
    features: (u uint8 [N, F], sx float32 [N, groups], z int64 [N]). z = 0 when the sample
    has no negative value, else 128. Per group, amax = max |x| ignoring NaN; z = 0:
    u = rint(x * (255 / amax)), sx = amax / 255; z = 128: u = rint(x * (127 / amax)) + 128
    clamped to 1..255, sx = amax / 127; amax == 0: u = z, sx = 0; NaN -> 0 before the zero
    point."""
    n, f = x.shape
    ng = -(-f // QLINEAR_GROUP)
    x = x.astype(F32)
    u = np.zeros((n, f), np.uint8)
    sx = np.zeros((n, ng), F32)
    z = np.zeros(n, np.int64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        for i in range(n):
            neg = bool((x[i] < 0).any())
            z[i] = 128 if neg else 0
            top = F32(127) if neg else F32(255)
            for g in range(ng):
                sl = slice(g * QLINEAR_GROUP, min(f, (g + 1) * QLINEAR_GROUP))
                a = np.abs(x[i, sl])
                amax = F32(np.max(np.where(np.isnan(a), F32(0), a)))
                if not amax > 0:
                    u[i, sl] = z[i]
                    continue
                v = (x[i, sl] * (top / amax)).astype(F32)
                v = np.where(np.isnan(v), F32(0), v)
                v = np.clip(v, -top if neg else F32(0), top)
                u[i, sl] = (np.rint(v).astype(np.int64) + z[i]).astype(np.uint8)
                sx[i, g] = amax / top
    return u, sx, z


def qlinear(x: np.ndarray, node: Node) -> np.ndarray:
    """int8 linear in feature groups g: acc_g = sum_{f in g} (u_f - z) q_of (int32);
    term_g = float32(acc_g) * scale[o, g] * sx[g]; out = term_0 + term_1 + ... in group
    order (+ bias), each step rounded to float32."""
    q = node.tensors["weight"].astype(np.int64)
    scale = node.tensors["scale"]
    u, sx, z = quantize_activations(x)
    n, f = u.shape
    y = np.zeros((n, q.shape[0]), F32)
    with np.errstate(invalid="ignore", over="ignore"):  # a non-finite input: as the engine
        for g in range(sx.shape[1]):
            sl = slice(g * QLINEAR_GROUP, min(f, (g + 1) * QLINEAR_GROUP))
            acc = u[:, sl].astype(np.int64) @ q[:, sl].T - z[:, None] * q[:, sl].sum(axis=1)[None, :]
            t = (acc.astype(F32) * scale[None, :, g]).astype(F32)
            t = (t * sx[:, g, None]).astype(F32)
            y = t if g == 0 else (y + t).astype(F32)
        if node.p("has_bias"):
            y = (y + node.tensors["bias"][None, :]).astype(F32)
    return y


def bn_scale_shift(node: Node) -> tuple[np.ndarray, np.ndarray]:
    t = node.tensors
    eps = F32(node.params["eps"])
    scale = (t["gamma"] / np.sqrt((t["var"] + eps).astype(F32))).astype(F32)
    shift = (t["beta"] - (t["mean"] * scale).astype(F32)).astype(F32)
    return scale, shift


def batchnorm(x: np.ndarray, node: Node) -> np.ndarray:
    scale, shift = bn_scale_shift(node)
    shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
    return ((x * scale.reshape(shape)).astype(F32) + shift.reshape(shape)).astype(F32)


def _pool(x: np.ndarray, node: Node, kind: str) -> np.ndarray:
    n, c, h, w = x.shape
    kh, kw, sh, sw = node.p("kh"), node.p("kw"), node.p("sh"), node.p("sw")
    pt, pl, pb, pr = node.p("pt"), node.p("pl"), node.p("pb"), node.p("pr")
    cm = bool(node.p("ceil_mode"))
    oh, ow = pool_out(h, kh, sh, pt, pb, cm), pool_out(w, kw, sw, pl, pr, cm)
    out = np.empty((n, c, oh, ow), F32)
    for oy in range(oh):
        y0 = oy * sh - pt
        ys, ye = max(y0, 0), min(y0 + kh, h)
        for ox in range(ow):
            x0 = ox * sw - pl
            xs, xe = max(x0, 0), min(x0 + kw, w)
            win = x[:, :, ys:ye, xs:xe]
            if kind == "max":
                out[:, :, oy, ox] = win.max(axis=(2, 3)) if win.size else -np.inf
                continue
            total = np.zeros((n, c), F32)
            for yy in range(ys, ye):
                for xx in range(xs, xe):
                    total = (total + x[:, :, yy, xx]).astype(F32)
            if node.p("count_include_pad"):
                div = (min(y0 + kh, h + pb) - y0) * (min(x0 + kw, w + pr) - x0)
            else:
                div = (ye - ys) * (xe - xs)
            out[:, :, oy, ox] = total / F32(max(div, 1))
    return out


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp((x - x.max(axis=1, keepdims=True)).astype(F32)).astype(F32)
    return (e / e.sum(axis=1, keepdims=True)).astype(F32)


# The ops of one input, by name (qconv2d and add, which need more, are run_node's own).
_UNARY: dict[str, Callable[[np.ndarray, Node], np.ndarray]] = {
    "qlinear": qlinear,
    "conv2d": conv2d,
    "bconv2d": bconv2d,
    "linear": linear,
    "blinear": blinear,
    "batchnorm": batchnorm,
    "relu": lambda x, node: np.maximum(x, F32(0)).astype(F32),
    "maxpool": lambda x, node: _pool(x, node, "max"),
    "avgpool": lambda x, node: _pool(x, node, "avg"),
    "flatten": lambda x, node: x.reshape(x.shape[0], -1).astype(F32),
    "dropout": lambda x, node: x,
    "softmax": lambda x, node: softmax(x),
}


def run_node(node: Node, inputs: list[np.ndarray], spec: InputSpec | None = None) -> np.ndarray:
    """One op on its input values (batch first). qconv2d reads the model input: uint8 NCHW
    pixels, or the float32 input turned back into pixels with `spec` (to_pixels)."""
    x = inputs[0]
    op = node.op
    if op == "qconv2d":
        if x.dtype != np.uint8:
            if spec is None:
                raise ValueError("qconv2d on a float input needs the model's input spec")
            x = to_pixels(x, spec)
        return qconv2d(x, node)
    if op == "add":
        return (x + inputs[1]).astype(F32)
    if op not in _UNARY:
        raise ValueError(f"unknown op {op}")
    return _UNARY[op](x, node)


@overload
def forward(model: Graph, x: np.ndarray, *, trace: Literal[False] = False) -> np.ndarray: ...
@overload
def forward(model: Graph, x: np.ndarray, *, trace: Literal[True]) -> list[np.ndarray]: ...
def forward(model: Graph, x: np.ndarray, *, trace: bool = False) -> np.ndarray | list[np.ndarray]:
    """Run the whole graph on float32 NCHW, or on uint8 NHWC pixels (normalized first, as the
    engine does). With trace, return every value (index 0 = the float input)."""
    x = np.asarray(x)
    values = [normalize(x, model.input) if x.dtype == np.uint8 else np.asarray(x, F32)]
    for i, node in enumerate(model.nodes):
        values.append(run_node(node, [values[v] for v in model.resolved_inputs(i)], model.input))
    return values if trace else values[-1]
