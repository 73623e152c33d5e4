"""Node constructors with the conventions of PyTorch modules (weights [O][I][kh][kw],
padding p, (ph, pw) or (top, left, bottom, right))."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .enums import MODES
from .graph import BN_KEYS, FormatError, Node


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(v, int | np.integer):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def _pads(padding: int | Sequence[int]) -> dict[str, int]:
    """padding: p, (ph, pw), or (top, left, bottom, right)."""
    if isinstance(padding, int | np.integer):
        t = l = b = r = int(padding)
    elif len(padding) == 2:
        t, l = (int(x) for x in padding)
        b, r = t, l
    else:
        t, l, b, r = (int(x) for x in padding)
    return {"pt": t, "pl": l, "pb": b, "pr": r}


def binarize_weights(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The paper's BWN approximation: B = sign(W) (+1 at 0), alpha = mean |W| per output."""
    w = np.asarray(w, dtype=np.float32)
    signs = np.where(w >= 0, 1, -1).astype(np.int8)
    alpha = np.abs(w).reshape(w.shape[0], -1).mean(axis=1).astype(np.float32)
    return signs, alpha


def _tensors(
    weight: np.ndarray, bias: np.ndarray | None, alpha: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """A weighted op's tensors: weight, then alpha (binary ops) and bias where given."""
    tensors = {"weight": weight}
    if alpha is not None:
        tensors["alpha"] = np.asarray(alpha, np.float32)
    if bias is not None:
        tensors["bias"] = np.asarray(bias, np.float32)
    return tensors


def _binary_node(
    op: str,
    signs: np.ndarray,
    alpha: np.ndarray,
    bias: np.ndarray | None,
    geometry: dict[str, int],
    mode: str,
    use_k: bool,
    name: str,
    inputs: tuple[int, ...],
) -> Node:
    """A binary op: its weights as int8 +1/-1 (x >= 0 counts as +1), its geometry then mode parameters."""
    signs = np.where(np.asarray(signs) >= 0, np.int8(1), np.int8(-1))
    params = {**geometry, "mode": MODES[mode], "use_k": int(use_k)}
    return Node(op, name, inputs, params, _tensors(signs, bias, alpha))


def _conv_params(
    weight: np.ndarray, bias: np.ndarray | None, stride: int | Sequence[int], padding: int | Sequence[int]
) -> dict[str, int]:
    """The geometry parameters of a convolution with weights [O][I][kh][kw]."""
    kh, kw = weight.shape[2:]
    sh, sw = _pair(stride)
    return {
        "out": weight.shape[0],
        "kh": kh,
        "kw": kw,
        "sh": sh,
        "sw": sw,
        **_pads(padding),
        "has_bias": int(bias is not None),
    }


def conv2d(
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    name: str = "",
    inputs: tuple[int, ...] = (),
) -> Node:
    weight = np.asarray(weight, np.float32)
    params = _conv_params(weight, bias, stride, padding)
    tensors = _tensors(weight, bias)
    return Node("conv2d", name, inputs, params, tensors)


def bconv2d(
    signs: np.ndarray,
    alpha: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    mode: str = "xnor",
    use_k: bool = False,
    name: str = "",
    inputs: tuple[int, ...] = (),
) -> Node:
    """signs: [O][I][kh][kw] of +1/-1 (or any real: x >= 0 counts as +1)."""
    geometry = _conv_params(np.asarray(signs), bias, stride, padding)
    return _binary_node("bconv2d", signs, alpha, bias, geometry, mode, use_k, name, inputs)


def linear(
    weight: np.ndarray, bias: np.ndarray | None = None, *, name: str = "", inputs: tuple[int, ...] = ()
) -> Node:
    weight = np.asarray(weight, np.float32)
    tensors = _tensors(weight, bias)
    return Node("linear", name, inputs, {"out": weight.shape[0], "has_bias": int(bias is not None)}, tensors)


def blinear(
    signs: np.ndarray,
    alpha: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    mode: str = "xnor",
    use_k: bool = False,
    name: str = "",
    inputs: tuple[int, ...] = (),
) -> Node:
    """signs: [O][I] of +1/-1 (or any real: x >= 0 counts as +1)."""
    geometry = {"out": np.shape(signs)[0], "has_bias": int(bias is not None)}
    return _binary_node("blinear", signs, alpha, bias, geometry, mode, use_k, name, inputs)


def batchnorm(
    gamma: np.ndarray,
    beta: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    eps: float = 1e-5,
    *,
    name: str = "",
    inputs: tuple[int, ...] = (),
) -> Node:
    tensors = {k: np.asarray(v, np.float32) for k, v in zip(BN_KEYS, (gamma, beta, mean, var), strict=True)}
    return Node("batchnorm", name, inputs, {"eps": float(eps)}, tensors)


def _pool(
    op: str,
    kernel: int | Sequence[int],
    stride: int | Sequence[int] | None,
    padding: int | Sequence[int],
    ceil_mode: bool,
    name: str,
    inputs: tuple[int, ...],
    extra: dict[str, int],
) -> Node:
    kh, kw = _pair(kernel)
    sh, sw = _pair(stride if stride is not None else kernel)
    params = {"kh": kh, "kw": kw, "sh": sh, "sw": sw, **_pads(padding), "ceil_mode": int(ceil_mode), **extra}
    return Node(op, name, inputs, params, {})


def maxpool(
    kernel: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    ceil_mode: bool = False,
    *,
    name: str = "",
    inputs: tuple[int, ...] = (),
) -> Node:
    return _pool("maxpool", kernel, stride, padding, ceil_mode, name, inputs, {})


def avgpool(
    kernel: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    *,
    name: str = "",
    inputs: tuple[int, ...] = (),
) -> Node:
    return _pool(
        "avgpool",
        kernel,
        stride,
        padding,
        ceil_mode,
        name,
        inputs,
        {"count_include_pad": int(count_include_pad)},
    )


def simple(op: str, *, name: str = "", inputs: tuple[int, ...] = ()) -> Node:
    """relu, flatten, dropout, softmax, add (add needs two inputs)."""
    if op not in ("relu", "flatten", "dropout", "softmax", "add"):
        raise FormatError(f"{op} is not a parameterless op")
    return Node(op, name, inputs, {}, {})
