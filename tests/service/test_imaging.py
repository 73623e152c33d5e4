"""Decoding and preprocessing: every image mode, the allowlist, limits, resize policies."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from service import imaging
from service.imaging import ImageError, ImageTooLarge, InputSpec, UnsupportedImage, preprocess

from .images import all_modes, encode, gradient, jpeg, png

GRAY28 = InputSpec(1, 28, 28, "gray", "exact", 0, 1 / 255, (0.5,), (0.25,))
RGB32 = InputSpec(3, 32, 32, "rgb", "shorter_crop", 36, 1 / 255, (0.4, 0.5, 0.6), (0.2, 0.25, 0.3))
BGR32 = InputSpec(3, 32, 32, "bgr", "exact", 0, 1.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
LIMIT = 40_000_000


@pytest.mark.parametrize("name", sorted(all_modes()))
@pytest.mark.parametrize("spec", [GRAY28, RGB32, BGR32], ids=["gray", "rgb_crop", "bgr"])
def test_every_mode_is_converted(name: str, spec: InputSpec) -> None:
    x = preprocess(all_modes()[name], spec, LIMIT)
    assert x.shape == (spec.channels, spec.height, spec.width)
    assert x.dtype == np.float32
    assert np.all(np.isfinite(x))
    assert x.std() > 0  # the gradient survived (not a blank image)


def test_normalization_formula() -> None:
    img = Image.new("RGB", (32, 32), (10, 100, 200))
    x = preprocess(encode(img, "PNG"), RGB32, LIMIT)
    expected = (
        np.array([10, 100, 200], np.float32) * np.float32(1 / 255) - np.array(RGB32.mean, np.float32)
    ) / np.array(RGB32.std, np.float32)
    assert np.allclose(x[:, 5, 5], expected, atol=1e-6)


def test_bgr_swaps_channels() -> None:
    img = Image.new("RGB", (32, 32), (10, 100, 200))
    x = preprocess(encode(img, "PNG"), BGR32, LIMIT)
    assert list(x[:, 0, 0]) == [200.0, 100.0, 10.0]


def test_exact_matches_pillow_resize() -> None:
    img = gradient(100, 60).convert("L")
    data = encode(img, "PNG")
    want = np.asarray(img.resize((28, 28), Image.Resampling.BILINEAR), np.float32)
    got = preprocess(data, GRAY28, LIMIT)[0] * 0.25 + 0.5
    assert np.allclose(got * 255, want, atol=1.0)


def test_shorter_crop_matches_resize_then_crop() -> None:
    img = gradient(90, 60)
    spec = RGB32
    # reference: resize shorter side to 36 then center crop 32
    resized = img.resize((54, 36), Image.Resampling.BILINEAR)
    left, top = round((54 - 32) / 2), round((36 - 32) / 2)
    ref = np.asarray(resized.crop((left, top, left + 32, top + 32)), np.float32)
    got = preprocess(encode(img, "PNG"), spec, LIMIT)
    got = (got.transpose(1, 2, 0) * np.array(spec.std) + np.array(spec.mean)) * 255
    assert np.abs(got - ref).mean() < 2.0


def test_exif_rotation_applied() -> None:
    # a tall image stored wide with orientation 6: after transpose it is tall (dark top -> dark right)
    arr = np.zeros((20, 40), np.uint8)
    arr[:, :20] = 255  # left half white as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise: stored left becomes displayed top
    data = encode(Image.fromarray(arr), "PNG", exif=exif.tobytes())
    x = preprocess(data, InputSpec(1, 40, 20, "gray", "exact", 0, 1 / 255, (0.0,), (1.0,)), LIMIT)
    assert x[0, :15].mean() > 0.9 and x[0, 25:].mean() < 0.1


def test_draft_decodes_big_jpeg_reduced(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[tuple[int, int]] = []
    real = imaging._to_8bit

    def spy(img: Image.Image, color: str) -> Image.Image:
        sizes.append(img.size)
        return real(img, color)

    monkeypatch.setattr(imaging, "_to_8bit", spy)
    preprocess(jpeg(640, 480), GRAY28, LIMIT)
    assert sizes and sizes[0][0] <= 640 // 8 * 2 and min(sizes[0]) >= 28


@pytest.mark.parametrize(
    "data", [b"hello world", b"%PDF-1.4 fake", b"\x00" * 100, b"II*\x00" + b"\x00" * 100]
)
def test_not_an_image_is_415(data: bytes) -> None:
    with pytest.raises(UnsupportedImage):
        preprocess(data, GRAY28, LIMIT)


def test_format_outside_allowlist_is_415() -> None:
    for fmt in ("TIFF", "PPM", "ICO"):
        data = encode(gradient(32, 32), fmt)
        with pytest.raises(UnsupportedImage):
            preprocess(data, GRAY28, LIMIT)


def test_other_decoders_never_run(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []
    real_open = Image.open

    def spy(fp: object, mode: str = "r", formats: object = None) -> Image.Image:
        seen.append(formats)
        return real_open(fp, mode, formats)  # type: ignore[arg-type]

    monkeypatch.setattr(Image, "open", spy)
    with pytest.raises(UnsupportedImage):
        preprocess(encode(gradient(32, 32), "TIFF"), GRAY28, LIMIT)
    assert seen == [imaging.ALLOWED_FORMATS]


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_truncated_image_is_422(cut: float) -> None:
    for data in (jpeg(200, 150), png(200, 150)):
        with pytest.raises(ImageError) as info:
            preprocess(data[: int(len(data) * cut)], GRAY28, LIMIT)
        assert info.value.status in (415, 422)


def test_corrupt_image_is_422() -> None:
    data = bytearray(png(64, 64))
    data[60:120] = b"\xff" * 60  # inside the IDAT chunk: CRC / zlib error
    with pytest.raises(ImageError) as info:
        preprocess(bytes(data), GRAY28, LIMIT)
    assert info.value.status == 422


def test_empty_body_is_422() -> None:
    with pytest.raises(ImageError) as info:
        preprocess(b"", GRAY28, LIMIT)
    assert info.value.status == 422


def test_pixel_limit_checked_before_decoding() -> None:
    # A 20000 x 20000 PNG compresses to a few hundred KB but would decode to 400 MP.
    img = Image.new("L", (20000, 20000))
    data = encode(img, "PNG", optimize=False)
    with pytest.raises(ImageTooLarge):
        preprocess(data, GRAY28, 10_000_000)


def test_pillow_bomb_warning_is_an_error() -> None:
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 1000
    try:
        with pytest.raises(ImageTooLarge):
            preprocess(png(40, 40), GRAY28, LIMIT)  # 1600 px: Pillow warns, we refuse
    finally:
        Image.MAX_IMAGE_PIXELS = old


@pytest.mark.parametrize("w,h", [(1, 30000), (30000, 1), (3, 20000)])
def test_extreme_aspect_ratios(w: int, h: int) -> None:
    data = encode(Image.new("L", (w, h), 128), "PNG")
    for spec in (GRAY28, InputSpec(1, 28, 28, "gray", "shorter_crop", 32, 1 / 255, (0.0,), (1.0,))):
        x = preprocess(data, spec, LIMIT)
        assert x.shape == (1, 28, 28)
        assert np.allclose(
            x * (1 if spec.resize == "shorter_crop" else 0.25)
            + (0 if spec.resize == "shorter_crop" else 0.5),
            128 / 255,
            atol=0.01,
        )


def test_raw_tensor_models_refuse_images() -> None:
    spec = InputSpec(4, 8, 8, "other", "exact", 0, 1.0, (0.0,) * 4, (1.0,) * 4)
    with pytest.raises(ImageError):
        preprocess(png(), spec, LIMIT)


def test_16bit_is_scaled_not_clipped() -> None:
    arr16 = np.full((32, 32), 32768, np.uint16)
    buf = io.BytesIO()
    Image.fromarray(arr16).save(buf, "PNG")
    x = preprocess(buf.getvalue(), InputSpec(1, 28, 28, "gray", "exact", 0, 1 / 255, (0.0,), (1.0,)), LIMIT)
    assert abs(float(x.mean()) - 0.5) < 0.01
