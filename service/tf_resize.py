"""TensorFlow 1's legacy bicubic resize, in numpy (resize policy "central_crop_bicubic").

Larq Zoo's models were trained and evaluated on images preprocessed with
`tf.compat.v1.image.resize_bicubic(align_corners=False, half_pixel_centers=False)`
(larq_zoo.preprocess_input). To give the imported models the accuracy they were published
with, the service reproduces that resize, which no image library does: it is not PIL's
bicubic (a = -0.5, half-pixel centres, antialiased when shrinking) nor OpenCV's.

What TensorFlow does (tensorflow/core/kernels/image/resize_bicubic_op.cc, legacy path):

- scale = float32(in_size) / float32(out_size); the source coordinate of output index i is
  float32(i) * scale (no half-pixel offset).
- in_loc = floor(src), delta = src - in_loc; the four taps are in_loc - 1 .. in_loc + 2,
  each clamped into [0, in_size - 1] (the edge pixel is replicated).
- The weights come from a table of 1025 entries: the fractional part is quantized as
  offset = lrintf(delta * 1024) (round half to even), and with the cubic convolution
  kernel of coefficient a = -0.75
      W(x) = (a + 2)|x|^3 - (a + 3)|x|^2 + 1      for |x| <= 1
      W(x) = a|x|^3 - 5a|x|^2 + 8a|x| - 4a         for 1 < |x| < 2
  (evaluated in double, stored as float32) the weights of the four taps are
      W(1 + t), W(t), W(1 - t), W(2 - t)   with t = offset / 1024.
- Rows are interpolated first (for each needed source column), then columns, in float32,
  each 4-tap sum computed as ((v0*w0 + v1*w1) + v2*w2) + v3*w3.
- The result is float32 and is neither clipped nor rounded (it overshoots 0..255 near
  sharp edges, as it does in TensorFlow).

Both passes are vectorized (separable): the cost is O(out_h * in_w + out_h * out_w) per
channel, so a large source image is read only at the rows the output needs.
"""

from __future__ import annotations

import numpy as np

TABLE_SIZE = 1024
CUBIC_A = -0.75


def _coeff_table(a: float = CUBIC_A) -> tuple[np.ndarray, np.ndarray]:
    """TF's InitCoeffsTable: near[i] = W(i/1024), far[i] = W(1 + i/1024), float32."""
    x = np.arange(TABLE_SIZE + 1, dtype=np.float64) / TABLE_SIZE
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    x1 = x + 1.0
    far = ((a * x1 - 5.0 * a) * x1 + 8.0 * a) * x1 - 4.0 * a
    return near.astype(np.float32), far.astype(np.float32)


_NEAR, _FAR = _coeff_table()


def legacy_bicubic_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The four source indices [out_size, 4] (int64) and weights [out_size, 4] (float32)
    of each output index along one axis."""
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be >= 1, got in {in_size}, out {out_size}")
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.arange(out_size, dtype=np.float32) * scale  # float32 * float32, as LegacyScaler
    in_loc = np.floor(src).astype(np.int64)
    delta = (src - in_loc.astype(np.float32)).astype(np.float32)
    offset = np.rint(delta * np.float32(TABLE_SIZE)).astype(np.int64)  # lrintf: half to even
    weights = np.stack(
        [_FAR[offset], _NEAR[offset], _NEAR[TABLE_SIZE - offset], _FAR[TABLE_SIZE - offset]], axis=1
    ).astype(np.float32)
    idx = np.clip(in_loc[:, None] + np.arange(-1, 3)[None, :], 0, in_size - 1)
    return idx, weights


def _interp(values: list[np.ndarray], w: list[np.ndarray]) -> np.ndarray:
    """((v0*w0 + v1*w1) + v2*w2) + v3*w3 in float32, w broadcast against the values."""
    acc = values[0] * w[0]
    for k in range(1, 4):
        acc = acc + values[k] * w[k]
    return acc


def resize_bicubic_legacy(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """image: H x W or H x W x C (any numeric dtype, e.g. uint8) -> float32 out_h x out_w (x C)."""
    img = np.asarray(image)
    squeeze = img.ndim == 2
    if squeeze:
        img = img[:, :, None]
    if img.ndim != 3:
        raise ValueError(f"expected an H x W or H x W x C image, got shape {img.shape}")
    in_h, in_w, _ = img.shape
    yi, yw = legacy_bicubic_taps(in_h, out_h)
    xi, xw = legacy_bicubic_taps(in_w, out_w)
    # Rows first: tmp[oy, x, c] over all source columns (only 4 source rows per output row are read,
    # and only they are converted to float32: a large upload is never copied whole).
    rows = [img[yi[:, k]].astype(np.float32) for k in range(4)]  # each [out_h, in_w, C]
    tmp = _interp(rows, [yw[:, k, None, None] for k in range(4)])
    # Then columns.
    cols = [tmp[:, xi[:, k]] for k in range(4)]  # each [out_h, out_w, C]
    out = _interp(cols, [xw[None, :, k, None] for k in range(4)]).astype(np.float32, copy=False)
    return out[:, :, 0] if squeeze else out


def central_crop_box(height: int, width: int, fraction: float = 0.875) -> tuple[int, int, int]:
    """larq_zoo's center crop: side c = int(fraction * min(H, W)) at offsets
    ((H - c) + 1) // 2, ((W - c) + 1) // 2. Returns (top, left, c)."""
    c = int(fraction * min(height, width))
    if c < 1:
        raise ValueError(f"a {width}x{height} image is too small to crop")
    return ((height - c) + 1) // 2, ((width - c) + 1) // 2, c


def central_crop_bicubic(pixels: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Resize policy 2 of engine/FORMAT.md on an H x W (x C) array: crop, then the legacy resize."""
    top, left, c = central_crop_box(pixels.shape[0], pixels.shape[1])
    return resize_bicubic_legacy(pixels[top : top + c, left : left + c], out_h, out_w)
