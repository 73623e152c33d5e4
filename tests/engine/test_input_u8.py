"""uint8 NHWC pixels as input: the engine applies the model's preprocessing itself.

The reference is the float path: the same pixels normalized in numpy as FORMAT.md says
(x = (p * scale - mean[c]) / std[c] in float32), transposed to NCHW and inferred.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine import Model
from engine import format as fmt
from engine.errors import InvalidArgumentError
from engine.graph import Graph
from engine.input_spec import InputSpec
from engine.model import isa_supported

from .netgen import conv_net, residual_net

ISAS = [
    pytest.param(isa, marks=pytest.mark.skipif(not isa_supported(isa), reason=f"CPU lacks {isa}"))
    for isa in ("scalar", "avx2", "avx512")
]


def normalize(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 NHWC -> float32 NCHW, one float32 rounding per operation."""
    c = pixels.shape[-1]
    mean = np.array([spec.mean[i] if i < 4 else 0.0 for i in range(c)], np.float32)
    std = np.array([spec.std[i] if i < 4 else 1.0 for i in range(c)], np.float32)
    x = pixels.astype(np.float32) * np.float32(spec.scale)
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


def with_preprocessing(graph: Graph, in_c: int) -> Graph:
    """The graph with an ImageNet-like input spec (distinct mean and std per channel)."""
    n = min(in_c, 4)
    mean = tuple(float(v) for v in (0.485, 0.456, 0.406, 0.3)[:n])
    std = tuple(float(v) for v in (0.229, 0.224, 0.225, 0.5)[:n])
    spec = dataclasses.replace(graph.input, scale=1 / 255, mean=mean, std=std)
    return dataclasses.replace(graph, input=spec)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("in_c,batch", [(3, 1), (3, 5), (1, 2), (6, 3)])
def test_uint8_equals_normalized_float(isa: str, in_c: int, batch: int) -> None:
    graph = with_preprocessing(conv_net(seed=11 + in_c, in_c=in_c), in_c)
    model = Model.from_bytes(fmt.to_bytes(graph), isa=isa, threads=2)
    c, h, w = model.input_shape
    pixels = np.random.default_rng(batch).integers(0, 256, (batch, h, w, c), dtype=np.uint8)
    got = model.infer(pixels)
    want = model.infer(normalize(pixels, graph.input))
    # The engine normalizes with the same float32 operations: equal bit for bit.
    np.testing.assert_array_equal(got, want)
    # One image (HWC) is a batch of one.
    np.testing.assert_array_equal(model.infer(pixels[0]), want[:1])


def test_uint8_residual_graph_and_padding() -> None:
    """The stem conv pads: padding is applied after normalization, so it means 0 there."""
    graph = with_preprocessing(residual_net(seed=5), 3)
    model = Model.from_bytes(fmt.to_bytes(graph))
    pixels = np.random.default_rng(0).integers(0, 256, (4, 12, 11, 3), dtype=np.uint8)
    np.testing.assert_array_equal(model.infer(pixels), model.infer(normalize(pixels, graph.input)))


def test_uint8_bad_shapes_and_dtypes_raise_clean_errors() -> None:
    graph = with_preprocessing(conv_net(seed=1), 3)
    model = Model.from_bytes(fmt.to_bytes(graph))
    c, h, w = model.input_shape
    with pytest.raises(InvalidArgumentError, match="uint8 NHWC"):
        model.infer(np.zeros((1, c, h, w), np.uint8))  # NCHW pixels: wrong layout
    with pytest.raises(InvalidArgumentError, match="uint8 NHWC"):
        model.infer(np.zeros((2, h, w), np.uint8))
    with pytest.raises(InvalidArgumentError, match="batch size"):
        model.infer(np.zeros((0, h, w, c), np.uint8))
    with pytest.raises(InvalidArgumentError, match="dtype"):
        model.infer(np.zeros((1, c, h, w), np.complex64))
    with pytest.raises(InvalidArgumentError, match="dtype"):
        model.infer(np.full((1, c, h, w), "a"))
    # A non-contiguous view is accepted (copied) and gives the same answer.
    pixels = np.random.default_rng(1).integers(0, 256, (2, h, w + 3, c), dtype=np.uint8)
    view = pixels[:, :, 1 : w + 1]
    np.testing.assert_array_equal(model.infer(view), model.infer(np.ascontiguousarray(view)))


def test_c_entry_point_validates_lengths() -> None:
    """xnor_infer_u8 checks every length itself (the binding is not the only caller)."""
    from engine._xnornet import ffi, lib

    graph = with_preprocessing(conv_net(seed=2), 3)
    model = Model.from_bytes(fmt.to_bytes(graph))
    c, h, w = model.input_shape
    pixels = np.zeros(2 * h * w * c, np.uint8)
    out = np.zeros(2 * model.info.output_size, np.float32)
    with model._context() as ctx:
        src = ffi.from_buffer("uint8_t[]", pixels)
        dst = ffi.from_buffer("float[]", out, require_writable=True)
        bad = lib.XNOR_ERR_INVALID_ARGUMENT
        assert lib.xnor_infer_u8(ctx.ptr, src, 2, pixels.size - 1, dst, out.size) == bad
        assert "uint8 NHWC" in ffi.string(lib.xnor_context_last_error(ctx.ptr)).decode()
        assert lib.xnor_infer_u8(ctx.ptr, src, 2, pixels.size, dst, out.size + 1) == bad
        assert lib.xnor_infer_u8(ctx.ptr, src, 0, 0, dst, 0) == bad
        assert lib.xnor_infer_u8(ctx.ptr, ffi.NULL, 2, pixels.size, dst, out.size) == bad
        assert lib.xnor_infer_u8(ctx.ptr, src, 2, pixels.size, dst, out.size) == lib.XNOR_OK
