"""Decoding and preprocessing: every image mode, the allowlist, limits, resize policies.

`preprocess` gives uint8 HxWxC pixels in the model's channel order for the "exact" and
"shorter_crop" policies (the engine normalizes) and the normalized float32 CHW tensor for
"central_crop_bicubic"."""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import cache

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
    assert x.shape == (spec.height, spec.width, spec.channels)
    assert x.dtype == np.uint8
    assert x.std() > 0  # the gradient survived (not a blank image)


def test_flat_color_stays_exact() -> None:
    img = Image.new("RGB", (50, 40), (10, 100, 200))
    x = preprocess(encode(img, "PNG"), RGB32, LIMIT)
    assert x.shape == (32, 32, 3) and np.all(x == np.array([10, 100, 200], np.uint8))


def test_bgr_swaps_channels() -> None:
    img = Image.new("RGB", (32, 32), (10, 100, 200))
    x = preprocess(encode(img, "PNG"), BGR32, LIMIT)
    assert list(x[0, 0]) == [200, 100, 10]


def test_exact_matches_pillow_resize() -> None:
    img = gradient(100, 60).convert("L")
    data = encode(img, "PNG")
    want = np.asarray(img.resize((28, 28), Image.Resampling.BILINEAR), np.float32)
    got = preprocess(data, GRAY28, LIMIT)[:, :, 0]
    assert np.abs(got - want).max() <= 1.0


def test_shorter_crop_matches_resize_then_crop() -> None:
    img = gradient(90, 60)
    spec = RGB32
    # reference: resize shorter side to 36 then center crop 32
    resized = img.resize((54, 36), Image.Resampling.BILINEAR)
    left, top = round((54 - 32) / 2), round((36 - 32) / 2)
    ref = np.asarray(resized.crop((left, top, left + 32, top + 32)), np.float32)
    got = preprocess(encode(img, "PNG"), spec, LIMIT)
    assert np.abs(got - ref).mean() < 2.0


def test_exif_rotation_applied() -> None:
    # a tall image stored wide with orientation 6: after transpose it is tall (dark top -> dark right)
    arr = np.zeros((20, 40), np.uint8)
    arr[:, :20] = 255  # left half white as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise: stored left becomes displayed top
    data = encode(Image.fromarray(arr), "PNG", exif=exif.tobytes())
    x = preprocess(data, InputSpec(1, 40, 20, "gray", "exact", 0, 1 / 255, (0.0,), (1.0,)), LIMIT)
    assert x[:15, :, 0].mean() > 0.9 * 255 and x[25:, :, 0].mean() < 0.1 * 255


@pytest.mark.parametrize("jpeg_decoder", ["simplejpeg", "pillow"])
def test_big_jpeg_decoded_reduced(monkeypatch: pytest.MonkeyPatch, jpeg_decoder: str) -> None:
    if jpeg_decoder == "pillow":
        monkeypatch.setattr(imaging, "simplejpeg", None)
    sizes: list[tuple[int, ...]] = []
    real = imaging.resize_to_input

    def spy(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
        sizes.append(pixels.shape)
        return real(pixels, spec)

    monkeypatch.setattr(imaging, "resize_to_input", spy)
    preprocess(jpeg(640, 480), GRAY28, LIMIT)  # 1/8: 80x60
    preprocess(jpeg(640, 480), ALEXNET, LIMIT)  # 480 // 256 = 1: full size
    preprocess(jpeg(2100, 1500), ALEXNET, LIMIT)  # 1500 // 256 = 5: 1/4
    assert [s[:2] for s in sizes] == [(60, 80), (480, 640), (375, 525)]


def test_jpeg_decoder_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    """libjpeg-turbo (simplejpeg) decodes RGB, gray and progressive JPEGs; CMYK JPEGs and every
    other format go through Pillow."""
    if imaging.simplejpeg is None:
        pytest.skip("simplejpeg is not installed")
    calls: list[int] = []
    real = imaging.simplejpeg.decode_jpeg

    def spy(data: bytes, *args: object, **kw: object) -> np.ndarray:
        calls.append(len(data))
        return real(data, *args, **kw)

    monkeypatch.setattr(imaging.simplejpeg, "decode_jpeg", spy)
    for name, expect in [("jpeg_rgb", 1), ("jpeg_gray", 1), ("jpeg_exif_rotated", 1), ("jpeg_cmyk", 0),
                         ("png_rgb", 0), ("webp", 0), ("gif", 0), ("bmp", 0)]:  # fmt: skip
        calls.clear()
        preprocess(all_modes()[name], RGB32, LIMIT)
        assert len(calls) == expect, name
    calls.clear()
    preprocess(encode(gradient(300, 200), "JPEG", progressive=True), RGB32, LIMIT)
    assert len(calls) == 1


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
        assert x.shape == (28, 28, 1)
        assert np.all(x == 128)


def test_raw_tensor_models_refuse_images() -> None:
    spec = InputSpec(4, 8, 8, "other", "exact", 0, 1.0, (0.0,) * 4, (1.0,) * 4)
    with pytest.raises(ImageError):
        preprocess(png(), spec, LIMIT)


def test_16bit_is_scaled_not_clipped() -> None:
    arr16 = np.full((32, 32), 32768, np.uint16)
    buf = io.BytesIO()
    Image.fromarray(arr16).save(buf, "PNG")
    x = preprocess(buf.getvalue(), InputSpec(1, 28, 28, "gray", "exact", 0, 1 / 255, (0.0,), (1.0,)), LIMIT)
    assert abs(float(x.mean()) / 255 - 0.5) < 0.01


# -- the reference implementation ----------------------------------------------------------------
# A frozen copy of the module as it was before its fast paths (in-place EXIF orientation, lookup
# table normalization, libjpeg-turbo decoding, the C resize). Two contracts are checked against it:
# - "central_crop_bicubic" (Larq Zoo) models: preprocess is the reference bit for bit;
# - "exact" / "shorter_crop" models: preprocess returns the reference's decoded pixels resized by
#   Pillow's antialiased bilinear filter in Pillow's two passes (horizontal, then vertical; no
#   reducing_gap pre-shrink), as uint8 in the model's channel order, bit for bit; the previous
#   contract (one Image.resize call with reducing_gap=3.0, normalized in Python) differs from it by
#   at most 1 per pixel unless the image is more than 3x larger than the model input.


def _ref_decode(data: bytes, spec: InputSpec) -> Image.Image:
    from PIL import ImageOps

    img: Image.Image = Image.open(io.BytesIO(data), formats=imaging.ALLOWED_FORMATS)
    if img.format == "JPEG" and spec.resize != "central_crop_bicubic":
        need = spec.resize_size if spec.resize == "shorter_crop" else max(spec.height, spec.width)
        img.draft("L" if spec.color == "gray" else "RGB", (need, need))
    img.load()
    img = ImageOps.exif_transpose(img) or img
    target = "L" if spec.color == "gray" else "RGB"
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        img = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).round().astype(np.uint8))
    elif (mode == "P" and "transparency" in img.info) or mode in ("PA", "LA", "La", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "1":
        img = img.convert("L")
    return img if img.mode == target else img.convert(target)


def _ref_box(img: Image.Image, spec: InputSpec) -> tuple[float, float, float, float] | None:
    w, h = img.size
    if spec.resize != "shorter_crop":
        return None
    size = spec.resize_size
    if w <= h:
        new_w, new_h = size, max(1, int(size * h / w))
    else:
        new_w, new_h = max(1, int(size * w / h)), size
    top = round((new_h - spec.height) / 2.0)
    left = round((new_w - spec.width) / 2.0)
    sx, sy = w / new_w, h / new_h
    return (left * sx, top * sy, (left + spec.width) * sx, (top + spec.height) * sy)


def _ref_pixels(data: bytes, spec: InputSpec) -> np.ndarray:
    """The previous contract's uint8 pixels (before normalization), RGB order."""
    from service.tf_resize import central_crop_bicubic

    img = _ref_decode(data, spec)
    if spec.resize == "central_crop_bicubic":
        return central_crop_bicubic(np.asarray(img, dtype=np.uint8), spec.height, spec.width)
    box = _ref_box(img, spec)
    img = img.resize((spec.width, spec.height), Image.Resampling.BILINEAR, box=box, reducing_gap=3.0)
    return np.asarray(img, dtype=np.uint8)


def _ref_preprocess(data: bytes, spec: InputSpec) -> np.ndarray:
    return _ref_normalize(_ref_pixels(data, spec), spec)


def _ref_model_pixels(data: bytes, spec: InputSpec) -> np.ndarray:
    """The current contract for exact / shorter_crop: Pillow's two passes, model channel order."""
    img = _ref_decode(data, spec)
    w, h = img.size
    x0, y0, x1, y1 = _ref_box(img, spec) or (0.0, 0.0, float(w), float(h))
    x1, y1 = min(x1, w), min(y1, h)
    bilinear = Image.Resampling.BILINEAR
    img = img.resize((spec.width, h), bilinear, box=(x0, 0, x1, h), reducing_gap=None)
    img = img.resize((spec.width, spec.height), bilinear, box=(0, y0, spec.width, y1), reducing_gap=None)
    px = np.asarray(img, dtype=np.uint8)
    if px.ndim == 2:
        return px[:, :, None]
    return np.ascontiguousarray(px[:, :, ::-1]) if spec.color == "bgr" else px


def _ref_normalize(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    arr = pixels.astype(np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if spec.color == "bgr":
        arr = arr[:, :, ::-1]
    c = arr.shape[2]
    mean = np.asarray(spec.mean[:c], np.float32)
    std = np.asarray(spec.std[:c], np.float32)
    out = (arr * np.float32(spec.scale) - mean) / std
    return np.ascontiguousarray(out.transpose(2, 0, 1), dtype=np.float32)


def _assert_bit_identical(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.dtype in (np.float32, np.uint8)
    assert got.shape == want.shape
    assert got.flags.c_contiguous and got.flags.writeable
    assert got.tobytes() == want.tobytes()  # bit for bit: -0.0 vs 0.0 and NaN payloads count


# the bundled Fashion-MNIST model's and the AlexNet architecture's specs (engine.ModelInfo)
FASHION = InputSpec(
    1, 28, 28, "gray", "exact", 0, 0.003921568859368563, (0.28600001335144043,), (0.3529999852180481,)
)
ALEXNET = InputSpec(
    3, 227, 227, "rgb", "shorter_crop", 256, 0.003921568859368563,
    (0.48500001430511475, 0.4560000002384186, 0.4059999883174896),
    (0.2290000021457672, 0.2240000069141388, 0.22499999403953552),
)  # fmt: skip
ALEXNET_BGR = InputSpec(
    3, 227, 227, "bgr", "shorter_crop", 256, 1.0, (103.53, 116.28, 123.675), (57.375, 57.12, 58.395)
)
LARQ = InputSpec(
    3, 224, 224, "rgb", "central_crop_bicubic", 0, 1.0, (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
)
LARQ_BGR = InputSpec(3, 64, 64, "bgr", "central_crop_bicubic", 0, 1 / 127.5, (1.0, 1.0, 1.0), (1.0, 1.0, 1.0))
GRAY_CROP = InputSpec(1, 28, 28, "gray", "shorter_crop", 32, 1 / 255, (0.1307,), (0.3081,))
RGB_ONE_MEAN = InputSpec(3, 32, 32, "rgb", "exact", 0, 1 / 255, (0.5,), (0.25,))  # mean/std broadcast
EQ_SPECS = {
    "fashion": FASHION, "alexnet": ALEXNET, "alexnet_bgr": ALEXNET_BGR, "larq": LARQ, "larq_bgr": LARQ_BGR,
    "gray28": GRAY28, "rgb_crop": RGB32, "bgr": BGR32, "gray_crop": GRAY_CROP, "rgb_one_mean": RGB_ONE_MEAN,
}  # fmt: skip


def _photo(w: int, h: int, seed: int = 0) -> Image.Image:
    """Noisy, photo-like RGB: every uint8 value in every channel, edges, smooth regions."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([128 + 127 * np.sin(xx / (17 + 9 * c) + yy / (29 - 5 * c) + c) for c in range(3)], axis=2)
    img[(xx // 37 + yy // 23) % 5 == 0] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 20, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _with_exif(img: Image.Image, fmt: str, orientation: int, **kw: object) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(img, fmt, exif=exif.tobytes(), **kw)


@cache
def equality_images() -> dict[str, bytes]:
    out = dict(all_modes())
    photo = _photo(640, 480)
    out["photo_jpeg_q90"] = encode(photo, "JPEG", quality=90)
    out["photo_jpeg_420_portrait"] = encode(_photo(300, 700, 1), "JPEG", quality=75)
    out["photo_jpeg_444_big"] = encode(_photo(2100, 1500, 2), "JPEG", quality=95, subsampling=0)
    out["photo_png_exact_size"] = encode(_photo(28, 28, 3), "PNG")
    out["photo_png_small"] = encode(_photo(20, 15, 4), "PNG")  # upscaled by every spec
    out["photo_png_rgba"] = encode(_photo(90, 70, 5).convert("RGBA"), "PNG")
    out["photo_webp"] = encode(photo, "WEBP", quality=80)
    out["gradient_jpeg"] = jpeg(640, 480)
    for o in range(1, 9):
        out[f"jpeg_exif_{o}"] = _with_exif(_photo(160, 100, o), "JPEG", o)
    out["jpeg_big_exif_5"] = _with_exif(_photo(1200, 700, 9), "JPEG", 5)  # draft and then transpose
    out["jpeg_gray_exif_3"] = _with_exif(_photo(64, 48).convert("L"), "JPEG", 3)
    out["png_palette_exif_6"] = _with_exif(_photo(64, 48).convert("P"), "PNG", 6)
    out["png_palette_transparent_exif_8"] = _with_exif(_photo(64, 48).convert("P"), "PNG", 8, transparency=3)
    out["png_rgba_exif_7"] = _with_exif(_photo(64, 48).convert("RGBA"), "PNG", 7)
    out["png_16bit_exif_2"] = _with_exif(
        Image.fromarray((np.arange(48 * 64).reshape(48, 64) * 21).astype(np.uint16)), "PNG", 2
    )
    out["webp_exif_6"] = _with_exif(_photo(80, 60), "WEBP", 6)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Orientation="6"/></x:xmpmeta>'
    out["png_xmp_orientation_6"] = encode(_photo(64, 48), "PNG", xmp=xmp)
    for w, h in [(1, 30000), (30000, 1), (3, 20000), (20000, 3), (1, 1)]:
        out[f"aspect_{w}x{h}"] = encode(Image.new("L", (w, h), 128), "PNG")
    out["aspect_noise_5x4000"] = encode(_photo(5, 4000, 6), "PNG")
    return out


def _outcome(
    fn: Callable[[bytes, InputSpec], np.ndarray], data: bytes, spec: InputSpec
) -> np.ndarray | type[BaseException]:
    try:
        return fn(data, spec)
    except Exception as exc:  # both sides must fail, and preprocess as an ImageError
        return type(exc)


@pytest.mark.parametrize("spec_name", sorted(EQ_SPECS))
def test_preprocess_bit_identical_to_reference(spec_name: str) -> None:
    spec = EQ_SPECS[spec_name]
    reference = _ref_preprocess if spec.resize == "central_crop_bicubic" else _ref_model_pixels
    compared = 0
    for name, data in sorted(equality_images().items()):
        want = _outcome(reference, data, spec)
        got = _outcome(lambda d, s: preprocess(d, s, LIMIT), data, spec)
        if isinstance(want, np.ndarray):
            assert isinstance(got, np.ndarray), f"{name}: raised {got}"
            _assert_bit_identical(got, want)
            compared += 1
        else:
            # the reference's exceptions are the raw ones; preprocess wraps them as ImageError
            assert isinstance(got, type) and issubclass(got, ImageError), f"{name}: {want} vs {got}"
    assert compared >= len(equality_images()) - 6


@pytest.mark.parametrize("spec_name", sorted(n for n, s in EQ_SPECS.items() if s.resize != LARQ.resize))
def test_previous_contract_within_one(spec_name: str) -> None:
    """The pixels moved by at most 1 from the previous contract's (one Image.resize with
    reducing_gap=3.0), except where that pre-shrank an image more than 3x the input size."""
    spec = EQ_SPECS[spec_name]
    for name, data in sorted(equality_images().items()):
        try:
            old = _ref_pixels(data, spec)
        except Exception:
            continue
        img = _ref_decode(data, spec)
        box = _ref_box(img, spec) or (0, 0, *img.size)
        if (box[2] - box[0]) / spec.width >= 6 or (box[3] - box[1]) / spec.height >= 6:
            continue  # reducing_gap=3.0 pre-shrank this one by a box filter
        old = old[:, :, None] if old.ndim == 2 else (old[:, :, ::-1] if spec.color == "bgr" else old)
        diff = np.abs(preprocess(data, spec, LIMIT).astype(np.int16) - old)
        assert diff.max() <= 1, name


def test_engine_sees_the_reference_input() -> None:
    """The bundled model on preprocess's uint8 pixels (normalized by the engine) gives the logits
    it gives on the reference's float tensor, bit for bit."""
    import engine
    from service.settings import BUNDLED_MODELS

    model = engine.Model.load(BUNDLED_MODELS / "fashion-mnist-xnor" / "1" / "model.xnor", threads=1)
    spec = model.info.input
    names = ["photo_jpeg_q90", "photo_png_rgba", "jpeg_exif_6", "png_16bit_exif_2", "photo_webp"]
    pixels = np.stack([preprocess(equality_images()[n], spec, LIMIT) for n in names])
    floats = np.stack([_ref_normalize(_ref_model_pixels(equality_images()[n], spec), spec) for n in names])
    assert pixels.dtype == np.uint8
    assert model.infer(pixels).tobytes() == model.infer(floats).tobytes()


def test_exif_orientations_all_applied() -> None:
    # the in-place transpose did run: orientation 6 turns a 160x100 photo into 100x160
    for o in range(1, 9):
        img = Image.open(io.BytesIO(equality_images()[f"jpeg_exif_{o}"]))
        img.load()
        imaging._orient(img)
        assert img.size == ((100, 160) if o >= 5 else (160, 100))
        assert img.getexif().get(0x0112, 1) == 1


@pytest.mark.parametrize("spec_name", sorted(EQ_SPECS))
def test_normalize_exhaustive_uint8(spec_name: str) -> None:
    """Every uint8 value in every channel: the lookup table is the formula, bit for bit."""
    spec = EQ_SPECS[spec_name]
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(256).astype(np.uint8).reshape(16, 16)
    for px in (
        values,
        np.stack([values, shuffled, values.T], axis=2),
        rng.integers(0, 256, (227, 227, 3), dtype=np.uint8),
        rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)[::3, 1::2],  # strided view
        rng.integers(0, 256, (5, 7), dtype=np.uint8),
    ):
        _assert_bit_identical(imaging.normalize(px, spec), _ref_normalize(px, spec))


@pytest.mark.parametrize(
    "spec",
    [*EQ_SPECS.values(), InputSpec(3, 8, 8, "rgb", "exact", 0, 0.1, (1e-3, -2.5, 7.0), (3.3, 1e-7, 0.7))],
)
def test_normalize_float_and_other_dtypes(spec: InputSpec) -> None:
    rng = np.random.default_rng(1)
    for px in (
        rng.normal(128, 90, (224, 224, 3)).astype(np.float32),  # central_crop_bicubic overshoots 0..255
        rng.normal(128, 90, (50, 40)).astype(np.float32),
        rng.normal(128, 90, (20, 30, 3)),  # float64: rounded to float32 first
        rng.integers(0, 65536, (20, 30, 3)).astype(np.uint16),
        np.array([[[0.0, -0.0, np.inf], [np.nan, -np.inf, 255.0]]], np.float32),
    ):
        with np.errstate(invalid="ignore"):
            _assert_bit_identical(imaging.normalize(px, spec), _ref_normalize(px, spec))


def test_normalize_mismatched_mean_fails_as_before() -> None:
    spec = InputSpec(3, 4, 4, "rgb", "exact", 0, 1.0, (0.1, 0.2), (1.0, 1.0))
    px = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError):
        _ref_normalize(px, spec)
    with pytest.raises(ValueError):
        imaging.normalize(px, spec)


def test_normalize_returns_a_fresh_array() -> None:
    px = np.full((8, 8, 3), 7, np.uint8)
    a, b = imaging.normalize(px, RGB32), imaging.normalize(px, RGB32)
    a[:] = 0
    assert b[0, 0, 0] != 0
