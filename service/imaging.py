"""Decode an uploaded image and preprocess it into the model's input tensor.

The contract is engine/FORMAT.md's: decode -> convert to the model's color -> resize
("exact" to in_h x in_w, or "shorter_crop": shorter side to resize_size, then a center
crop) -> x[c] = (pixel * scale - mean[c]) / std[c] in float32 -> CHW.

Untrusted input, so: only the allowlisted formats' decoders ever run (Image.open(formats=)),
the pixel count is checked from the header before anything is decoded, Pillow's
decompression-bomb warning is an error, big JPEGs are decoded at reduced size with draft(),
and "shorter_crop" resizes only the source region that survives the crop, so an extreme
aspect ratio never materialises a huge intermediate image.
"""

from __future__ import annotations

import io
import struct
import warnings
from functools import lru_cache

import numpy as np
from PIL import Image, ImageOps

from engine.input_spec import InputSpec

from .errors import ApiError

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


def _draft(img: Image.Image, spec: InputSpec) -> None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the image is much larger than needed.

    draft() keeps both sides at or above the requested size. The request is square so that an
    EXIF rotation applied afterwards cannot leave a side too small.
    """
    if img.format != "JPEG" or spec.resize == "central_crop_bicubic":
        return  # central_crop_bicubic: larq decodes at full size; a reduced decode would change the pixels
    need = spec.resize_size if spec.resize == "shorter_crop" else max(spec.height, spec.width)
    mode = "L" if spec.color == "gray" else "RGB"
    img.draft(mode, (need, need))


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


def _resize(img: Image.Image, spec: InputSpec) -> Image.Image:
    w, h = img.size
    if spec.resize != "shorter_crop":
        return img.resize((spec.width, spec.height), Image.Resampling.BILINEAR, reducing_gap=3.0)
    # Resize the shorter side to resize_size (as torchvision's Resize(int) rounds), center-crop
    # in_h x in_w (as CenterCrop rounds), and map that crop back into source coordinates so
    # only the needed region is resampled.
    size = spec.resize_size
    if w <= h:
        new_w, new_h = size, max(1, int(size * h / w))
    else:
        new_w, new_h = max(1, int(size * w / h)), size
    top = round((new_h - spec.height) / 2.0)
    left = round((new_w - spec.width) / 2.0)
    sx, sy = w / new_w, h / new_h
    box = (left * sx, top * sy, (left + spec.width) * sx, (top + spec.height) * sy)
    return img.resize((spec.width, spec.height), Image.Resampling.BILINEAR, box=box, reducing_gap=3.0)


def _pixels(img: Image.Image, spec: InputSpec) -> np.ndarray:
    """The decoded 'L'/'RGB' image -> the resized HxW or HxWx3 array (uint8, or float32 for
    central_crop_bicubic)."""
    if spec.resize == "central_crop_bicubic":
        # Resize policy 2 (Larq Zoo, issue 7): center crop, then TF's legacy bicubic resize
        # (service/tf_resize.py). Its float output is kept as is: neither clipped nor rounded.
        from .tf_resize import central_crop_bicubic

        return central_crop_bicubic(np.asarray(img, dtype=np.uint8), spec.height, spec.width)
    return np.asarray(_resize(img, spec), dtype=np.uint8)


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


def preprocess(data: bytes, spec: InputSpec, max_pixels: int) -> np.ndarray:
    """Encoded image bytes -> float32 [C, H, W] for the model. Raises ImageError subclasses."""
    if spec.color not in ("gray", "rgb", "bgr"):
        raise ImageError("this model takes raw tensors, not images (use the v2 infer endpoint)")
    img = open_image(data, max_pixels)
    try:
        _draft(img, spec)
        img.load()  # the first frame of an animation
        img = _orient(img)
        img = _to_8bit(img, spec.color)
        pixels = _pixels(img, spec)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge(f"image exceeds the limit of {max_pixels} pixels") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:
        raise ImageError(f"corrupt or truncated image: {exc}") from None
    finally:
        img.close()
    if pixels.shape[:2] != (spec.height, spec.width):
        raise ImageError(f"preprocessing produced {pixels.shape}, expected {spec.height}x{spec.width}")
    return normalize(pixels, spec)
