"""Decode an uploaded image and turn it into the model's input.

The contract is engine/FORMAT.md's: decode -> convert to the model's color -> resize ("exact"
to in_h x in_w, or "shorter_crop": shorter side to resize_size, then a center crop) ->
x[c] = (pixel * scale - mean[c]) / std[c]. For those two policies `preprocess` stops at the
uint8 pixels, HxWxC in the model's channel order: the engine does the normalization itself
(folded into its first layer). "central_crop_bicubic" (Larq Zoo models) keeps its float
pipeline: TensorFlow's bicubic resize is neither clipped nor rounded, so its input is the
normalized float32 CHW tensor.

Untrusted input, so: only the allowlisted formats' decoders ever run (Image.open(formats=)),
the pixel count is checked from the header before anything is decoded, Pillow's
decompression-bomb warning is an error, and truncated or corrupt files are refused.

Decoding: a baseline or progressive RGB/gray JPEG is decoded by libjpeg-turbo through
simplejpeg, at 1/2, 1/4 or 1/8 scale when the image is that much larger than the model needs
(the scale Pillow's draft() picks, and the same pixels bit for bit). The other M/8 scales
libjpeg-turbo offers are not used: measured on this project's machines they decode slower than
the full size (their IDCTs have no SIMD; README, "Preprocessing"). Every other image (PNG,
WebP, GIF, BMP, CMYK JPEGs, and any JPEG simplejpeg refuses) goes through Pillow as before.

Resizing: the crop-then-resize runs in the engine (engine.preprocess.resize, C with AVX2): only
the source region that survives the center crop is resampled, with Pillow's antialiased
bilinear filter, so an extreme aspect ratio never materialises a huge intermediate image.
"""

from __future__ import annotations

import io
import struct
import warnings
from functools import lru_cache

import numpy as np
from PIL import Image, ImageOps

from engine import preprocess as engine_preprocess
from engine.input_spec import InputSpec

from .errors import ApiError

try:  # libjpeg-turbo with scaled decoding; without it every JPEG goes through Pillow
    import simplejpeg
except ImportError:  # pragma: no cover - a dependency; the fallback keeps the service working
    simplejpeg = None

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")

# Process-wide on purpose: a bomb warning anywhere in this service is an error.
warnings.simplefilter("error", Image.DecompressionBombWarning)


class ImageError(ApiError, ValueError):
    """Base: the upload cannot be turned into a model input. `reason` is the metrics label."""

    status = 422
    code = "bad_image"
    reason: str | None = "bad_image"


class UnsupportedImage(ImageError):
    status, code, reason = 415, "unsupported_type", "unsupported_type"


class ImageTooLarge(ImageError):
    status, code, reason = 413, "too_large", "too_large"


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Identify the format from the allowlist and check the size; nothing is decoded yet."""
    if not data:
        raise ImageError("the request body is empty")
    try:
        img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.UnidentifiedImageError:
        raise UnsupportedImage(f"not an image in an accepted format ({', '.join(ALLOWED_FORMATS)})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge(f"image has more than {max_pixels} pixels") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ImageError(f"corrupt image: {exc}") from None
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError("image has no pixels")
    # Also Pillow's own limit: if something reset the warning filter, its warning is still a refusal.
    limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    if w * h > limit:
        raise ImageTooLarge(f"image is {w}x{h} = {w * h} pixels; the limit is {limit}")
    return img


def _need(spec: InputSpec) -> int:
    """The side both decoded sides must keep: square, so an EXIF rotation applied afterwards
    cannot leave a side too small."""
    return spec.resize_size if spec.resize == "shorter_crop" else max(spec.height, spec.width)


def _jpeg_reduction(size: tuple[int, int], need: int) -> int:
    """1, 2, 4 or 8: the largest power-of-two reduction keeping both sides >= need, by the rule
    of Pillow's draft() (so both decoders produce the same pixels)."""
    scale = min(size[0] // need, size[1] // need)
    return next((s for s in (8, 4, 2) if scale >= s), 1)


def _draft(img: Image.Image, spec: InputSpec) -> None:
    """Let Pillow's libjpeg decode at 1/2, 1/4 or 1/8 scale when the image is much larger than needed."""
    if img.format != "JPEG" or spec.resize == "central_crop_bicubic":
        return  # central_crop_bicubic: larq decodes at full size; a reduced decode would change the pixels
    need = _need(spec)
    img.draft("L" if spec.color == "gray" else "RGB", (need, need))


def _decode_jpeg(img: Image.Image, data: bytes, spec: InputSpec) -> np.ndarray | None:
    """A YCbCr/RGB/gray JPEG through libjpeg-turbo (scaled as _draft would), oriented by its
    EXIF; None when simplejpeg is absent, the JPEG is another kind (CMYK, MPO), or libjpeg-turbo
    refuses it (then Pillow decides, and refuses what is really broken)."""
    if simplejpeg is None or img.format != "JPEG" or img.mode not in ("RGB", "L"):
        return None
    w, h = img.size
    s = _jpeg_reduction((w, h), _need(spec))
    try:
        if tuple(simplejpeg.decode_jpeg_header(data)[:2]) != (h, w):
            return None  # the two parsers disagree about the size the pixel cap was checked on
        pixels = simplejpeg.decode_jpeg(
            data,
            colorspace="GRAY" if spec.color == "gray" else "RGB",
            min_height=-(-h // s),  # libjpeg-turbo's scaled size is the ceiling
            min_width=-(-w // s),
            strict=True,  # a truncated or corrupt stream is an error, not a gray remainder
        )
    except ValueError:
        return None
    if pixels.shape[:2] != (-(-h // s), -(-w // s)):
        return None  # not the scale asked for: leave it to Pillow rather than guess
    return _orient_array(pixels, img.getexif().get(0x0112, 1))


def _orient_array(pixels: np.ndarray, orientation: object) -> np.ndarray:
    """The EXIF orientation applied to an HxW[xC] array, as ImageOps.exif_transpose does it
    (a view; the resize reads it through its row stride or copies it once)."""
    if orientation == 2:
        return pixels[:, ::-1]
    if orientation == 3:
        return pixels[::-1, ::-1]
    if orientation == 4:
        return pixels[::-1]
    if orientation == 5:
        return pixels.swapaxes(0, 1)
    if orientation == 6:
        return pixels.swapaxes(0, 1)[:, ::-1]
    if orientation == 7:
        return pixels.swapaxes(0, 1)[::-1, ::-1]
    if orientation == 8:
        return pixels.swapaxes(0, 1)[::-1]
    return pixels


def _to_8bit(img: Image.Image, color: str) -> Image.Image:
    """Any decoded mode -> 'L' or 'RGB' (palette, alpha, CMYK, 1-bit, 16-bit, ...)."""
    target = "L" if color == "gray" else "RGB"
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # 16-bit (and 32-bit) gray: Pillow's convert() would clip at 255; scale the range instead.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        arr = np.clip(arr * (255.0 / top), 0, 255).round().astype(np.uint8)
        img = Image.fromarray(arr)
    elif mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # the documented way to drop palette transparency
    elif mode in ("PA", "LA", "La", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "1":
        img = img.convert("L")
    return img if img.mode == target else img.convert(target)


def _orient(img: Image.Image) -> Image.Image:
    """Apply the EXIF (or XMP) orientation, in place: no copy when there is none to apply."""
    ImageOps.exif_transpose(img, in_place=True)
    return img


def crop_box(size: tuple[int, int], spec: InputSpec) -> tuple[float, float, float, float]:
    """The source region the model's input comes from: all of it for "exact"; for "shorter_crop"
    the center crop in_h x in_w of the image resized to a shorter side of resize_size (as
    torchvision's Resize(int) and CenterCrop round), mapped back into source pixels."""
    w, h = size
    if spec.resize != "shorter_crop":
        return (0.0, 0.0, float(w), float(h))
    rs = spec.resize_size
    if w <= h:
        new_w, new_h = rs, max(1, int(rs * h / w))
    else:
        new_w, new_h = max(1, int(rs * w / h)), rs
    top = round((new_h - spec.height) / 2.0)
    left = round((new_w - spec.width) / 2.0)
    sx, sy = w / new_w, h / new_h
    # min(): (left + width) * sx can round a hair past the edge when the crop reaches it
    return (left * sx, top * sy, min((left + spec.width) * sx, w), min((top + spec.height) * sy, h))


def resize_to_input(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 HxW (gray) or HxWx3 (RGB) -> the model's uint8 input HxWxC, channels in its order."""
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    h, w = pixels.shape[:2]
    out = engine_preprocess.resize(
        pixels, crop_box((w, h), spec), (spec.width, spec.height), reverse_channels=spec.color == "bgr"
    )
    return out if out.ndim == 3 else out[:, :, None]


@lru_cache(maxsize=64)
def _lut(scale: float, mean: tuple[float, ...], std: tuple[float, ...], channels: int) -> np.ndarray | None:
    """[channels, 256] float32: row c, entry p is (p * scale - mean[c]) / std[c] computed with
    exactly the float32 operations of the direct formula, so indexing it gives bit-identical
    results for uint8 pixels. None when mean/std do not broadcast over the channels (the direct
    formula then decides what happens)."""
    m, s = len(mean), len(std)
    if m not in (1, channels) or s not in (1, channels):
        return None
    p = np.arange(256, dtype=np.float32)[:, None]
    table = (p * np.float32(scale) - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    out = np.ascontiguousarray(np.broadcast_to(table, (256, channels)).T, dtype=np.float32)
    out.flags.writeable = False
    return out


def normalize(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """uint8 (or float32) HxW or HxWx3 -> float32 CHW with x[c] = (p * scale - mean[c]) / std[c].

    Written into the CHW output one channel at a time: for uint8 pixels by a 256-entry lookup
    table per channel (built with the same float32 operations, so bit-identical), otherwise by
    the formula itself.
    """
    if pixels.ndim not in (2, 3):
        return _normalize_direct(pixels, spec)
    hwc = pixels[:, :, None] if pixels.ndim == 2 else pixels
    h, w, c = hwc.shape
    mean, std = spec.mean[:c], spec.std[:c]
    order = range(c - 1, -1, -1) if spec.color == "bgr" else range(c)
    out = np.empty((c, h, w), np.float32)
    if pixels.dtype == np.uint8:
        lut = _lut(float(spec.scale), tuple(mean), tuple(std), c)
        if lut is None:
            return _normalize_direct(pixels, spec)
        for k, ch in enumerate(order):
            # mode="clip" skips the bounds check; a uint8 index is always in 0..255 anyway
            np.take(lut[k], hwc[:, :, ch], out=out[k], mode="clip")
        return out
    if len(mean) not in (1, c) or len(std) not in (1, c):
        return _normalize_direct(pixels, spec)
    arr = hwc if hwc.dtype == np.float32 else hwc.astype(np.float32)
    scale = np.float32(spec.scale)
    mean32 = np.asarray(mean, np.float32)
    std32 = np.asarray(std, np.float32)
    for k, ch in enumerate(order):
        o = out[k]
        np.multiply(arr[:, :, ch], scale, out=o)
        np.subtract(o, mean32[k if len(mean32) > 1 else 0], out=o)
        np.divide(o, std32[k if len(std32) > 1 else 0], out=o)
    return out


def _normalize_direct(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """The formula as written, for inputs the fast paths above do not handle."""
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


def decode(img: Image.Image, data: bytes, spec: InputSpec) -> np.ndarray:
    """The opened image -> oriented uint8 pixels, HxW (gray) or HxWx3 (RGB), decoded no larger
    than the model needs. Raises what the decoders raise (preprocess maps it)."""
    pixels = _decode_jpeg(img, data, spec)
    if pixels is not None:
        return pixels
    _draft(img, spec)
    img.load()  # the first frame of an animation
    img = _to_8bit(_orient(img), spec.color)
    return np.asarray(img, dtype=np.uint8)


def preprocess(data: bytes, spec: InputSpec, max_pixels: int) -> np.ndarray:
    """Encoded image bytes -> the model's input for one image: uint8 [H, W, C] (channels in the
    model's order; the engine normalizes) for "exact" and "shorter_crop", float32 [C, H, W]
    (normalized) for "central_crop_bicubic". Raises ImageError subclasses."""
    if spec.color not in ("gray", "rgb", "bgr"):
        raise ImageError("this model takes raw tensors, not images (use the v2 infer endpoint)")
    img = open_image(data, max_pixels)
    try:
        if spec.resize == "central_crop_bicubic":
            # Larq Zoo's preprocessing: the full decode, center crop, then TF's legacy bicubic
            # resize (service/tf_resize.py), whose float output is kept as is.
            from .tf_resize import central_crop_bicubic

            img.load()
            img = _to_8bit(_orient(img), spec.color)
            pixels = np.asarray(img, dtype=np.uint8)
            x = normalize(central_crop_bicubic(pixels, spec.height, spec.width), spec)
        else:
            x = resize_to_input(decode(img, data, spec), spec)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge(f"image exceeds the limit of {max_pixels} pixels") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:
        raise ImageError(f"corrupt or truncated image: {exc}") from None
    finally:
        img.close()
    return x
