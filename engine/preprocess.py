"""Image preprocessing in the engine: crop-then-resize of uint8 pixels into a model's uint8 input.

`resize(pixels, box, (width, height))` resamples the `box` region (x0, y0, x1, y1 in source
pixels, Pillow's convention) of an HxW (gray) or HxWx3 uint8 image to height x width with
Pillow's antialiased BILINEAR filter; the result equals
`Image.fromarray(pixels).resize((width, height), Image.BILINEAR, box=box, reducing_gap=None)`.
The C function checks every size (xnor_preprocess_resize in xnornet.h); cffi releases the
GIL while it runs, so preprocessing threads resize in parallel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._xnornet import ffi, lib
from .errors import InvalidArgumentError, error_for
from .model import ISAS, _isa_name

MAX_SIDE = int(lib.XNOR_PREPROCESS_MAX_SIDE)
_ERRBUF = 256


def resize(
    pixels: np.ndarray,
    box: Sequence[float],
    size: tuple[int, int],
    *,
    reverse_channels: bool = False,
    isa: str | None = None,
) -> np.ndarray:
    """uint8 [H, W] or [H, W, 3] -> uint8 [height, width] or [height, width, 3]; size is
    (width, height). reverse_channels writes RGB as BGR. Raises InvalidArgumentError."""
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        raise InvalidArgumentError("pixels must be a uint8 array of shape (H, W) or (H, W, 3)")
    if pixels.ndim == 3 and pixels.shape[2] != 3:
        raise InvalidArgumentError(f"pixels have {pixels.shape[2]} channels; expected 1 or 3")
    # Rows may be strided (a crop view); pixels within a row must be contiguous.
    channels = 1 if pixels.ndim == 2 else 3
    if pixels.strides[-1] != 1 or (channels == 3 and pixels.strides[1] != 3) or pixels.strides[0] < 0:
        pixels = np.ascontiguousarray(pixels)
    h, w = pixels.shape[:2]
    width, height = int(size[0]), int(size[1])
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise InvalidArgumentError(f"output size {width}x{height} is outside 1..{MAX_SIDE}")
    if len(box) != 4:
        raise InvalidArgumentError("box must be (x0, y0, x1, y1)")
    out = np.empty((height, width, channels) if channels == 3 else (height, width), np.uint8)
    p = ffi.new("xnor_resize_params *", lib.xnor_resize_default_params())
    p.src_w, p.src_h, p.channels = w, h, channels
    p.src_stride = pixels.strides[0] if h > 1 else w * channels
    p.box = [float(v) for v in box]
    p.dst_w, p.dst_h = width, height
    p.reverse_channels = 1 if reverse_channels else 0
    p.isa = ISAS[_isa_name(isa)]
    span = (h - 1) * p.src_stride + w * channels
    src = ffi.from_buffer("uint8_t[]", pixels) if pixels.flags.c_contiguous else _strided(pixels, span)
    err = ffi.new("char[]", _ERRBUF)
    st = lib.xnor_preprocess_resize(
        p, src, span, ffi.from_buffer("uint8_t[]", out, require_writable=True), out.size, err, _ERRBUF
    )
    if st != 0:
        raise error_for(st, ffi.string(err).decode(errors="replace"))
    return out


def _strided(pixels: np.ndarray, span: int) -> object:
    """The bytes under a row-strided view, from its first pixel, without copying."""
    base = np.lib.stride_tricks.as_strided(pixels, shape=(span,), strides=(1,))
    return ffi.from_buffer("uint8_t[]", base)
