"""TF1's legacy resize_bicubic (service/tf_resize.py) against values derived by hand, and the
service's resize policy "central_crop_bicubic"."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from service import imaging
from service.tf_resize import (
    central_crop_bicubic,
    central_crop_box,
    legacy_bicubic_taps,
    resize_bicubic_legacy,
)

A = -0.75


def keys(x: float) -> float:
    """The cubic convolution kernel with a = -0.75 (float64, written out for the tests)."""
    x = abs(x)
    if x <= 1:
        return (A + 2) * x**3 - (A + 3) * x**2 + 1
    if x < 2:
        return A * x**3 - 5 * A * x**2 + 8 * A * x - 4 * A
    return 0.0


def taps(t: float) -> list[float]:
    """Weights of the taps in_loc - 1, in_loc, in_loc + 1, in_loc + 2 at fraction t."""
    return [keys(1 + t), keys(t), keys(1 - t), keys(2 - t)]


def test_4x4_to_2x2_takes_every_other_pixel() -> None:
    # scale = 4 / 2 = 2: sources 0 and 2, fraction 0, weights W(1), W(0), W(1), W(2) = 0, 1, 0, 0.
    img = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    out = resize_bicubic_legacy(img, 2, 2)
    assert out.dtype == np.float32
    assert np.array_equal(out, np.array([[0, 20], [80, 100]], np.float32))
    assert taps(0.0) == [0.0, 1.0, 0.0, 0.0]


# 3 -> 5: scale = float32(3) / float32(5) = 0.6000000238418579 (float32); source of output i is
# float32(i * scale): 0, 0.6000000238, 1.2000000477, 1.8000000715, 2.4000000954 (all exact products).
# Fractions * 1024 = 0, 614.40002, 204.80005, 819.20007, 409.60010 -> offsets 0, 614, 205, 819, 410.
# Taps in_loc - 1 .. in_loc + 2 with in_loc 0, 0, 1, 1, 2, clamped to 0..2 (edge replication).
HAND_IDX = [[0, 0, 1, 2], [0, 0, 1, 2], [0, 1, 2, 2], [0, 1, 2, 2], [1, 2, 2, 2]]
HAND_OFFSETS = [0, 614, 205, 819, 410]


def test_3_to_5_taps_by_hand() -> None:
    idx, w = legacy_bicubic_taps(3, 5)
    assert idx.tolist() == HAND_IDX
    for i, off in enumerate(HAND_OFFSETS):
        assert np.allclose(w[i], taps(off / 1024), atol=1e-7), (i, w[i], taps(off / 1024))
    assert np.allclose(w.sum(axis=1), 1.0, atol=1e-6)


def test_3x3_to_5x5_by_hand() -> None:
    img = np.array([[10, 200, 30], [90, 0, 255], [40, 120, 60]], np.uint8)
    wy = np.zeros((5, 3))
    for i, (ids, off) in enumerate(zip(HAND_IDX, HAND_OFFSETS, strict=True)):
        for j, wt in zip(ids, taps(off / 1024), strict=True):
            wy[i, j] += wt  # replicated edge pixels accumulate their weights
    expected = wy @ img.astype(np.float64) @ wy.T
    out = resize_bicubic_legacy(img, 5, 5)
    assert np.allclose(out, expected, atol=1e-3)
    assert out[0, 0] == 10.0  # output (0, 0) is source (0, 0)
    # e.g. out[0, 1]: row 0 = [10, 200, 30] at fraction 614/1024 over taps 10, 10, 200, 30
    w = taps(614 / 1024)
    assert out[0, 1] == pytest.approx(10 * w[0] + 10 * w[1] + 200 * w[2] + 30 * w[3], abs=1e-3)


def test_fraction_rounds_half_to_even() -> None:
    # 1 -> 2048: source i / 2048, fraction * 1024 = i / 2: i = 1 -> 0.5 -> 0; i = 3 -> 1.5 -> 2.
    _, w = legacy_bicubic_taps(1, 2048)
    assert np.allclose(w[1], taps(0.0), atol=1e-7)
    assert np.allclose(w[3], taps(2 / 1024), atol=1e-7)


def test_not_clipped_and_constant_kept() -> None:
    step = np.tile(np.array([0, 0, 0, 255, 255, 255], np.uint8), (6, 1))
    out = resize_bicubic_legacy(step, 6, 13)
    assert out.min() < -1 and out.max() > 256  # the a = -0.75 kernel overshoots; TF does not clip
    flat = np.full((7, 9, 3), 77, np.uint8)
    assert np.allclose(resize_bicubic_legacy(flat, 5, 4), 77, atol=1e-4)


def test_channels_are_independent() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (11, 7, 3), dtype=np.uint8)
    out = resize_bicubic_legacy(img, 6, 9)
    for c in range(3):
        assert np.array_equal(out[:, :, c], resize_bicubic_legacy(img[:, :, c], 6, 9))


def test_central_crop_box() -> None:
    assert central_crop_box(480, 640) == (30, 110, 420)  # c = int(0.875 * 480); (60 + 1) // 2, (220 + 1) // 2
    assert central_crop_box(101, 300) == (7, 106, 88)  # int(88.375); (13 + 1) // 2; (212 + 1) // 2
    with pytest.raises(ValueError):
        central_crop_box(1, 1)


SPEC = imaging.InputSpec(
    3, 224, 224, "rgb", "central_crop_bicubic", 0, 1.0, (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_service_preprocess_policy(fmt: str) -> None:
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, (700, 1000, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt)
    decoded = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))  # full size: no draft
    x = imaging.preprocess(buf.getvalue(), SPEC, 40_000_000)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    resized = central_crop_bicubic(decoded, 224, 224)
    expected = (resized - np.array(SPEC.mean, np.float32)) / np.array(SPEC.std, np.float32)
    assert np.allclose(x, expected.transpose(2, 0, 1), atol=1e-5)
