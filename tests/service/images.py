"""Encoded test images of every mode the service must accept (built in memory with Pillow)."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
from PIL import Image


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def gradient(w: int = 64, h: int = 48, mode: str = "RGB") -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None].repeat(w, 1)
    rgb = np.stack([x, y, 255 - x], axis=2).astype(np.uint8)
    img = Image.fromarray(rgb)
    return img if mode == "RGB" else img.convert(mode)


def jpeg(w: int = 640, h: int = 480, quality: int = 90) -> bytes:
    return encode(gradient(w, h), "JPEG", quality=quality)


def png(w: int = 64, h: int = 48, mode: str = "RGB") -> bytes:
    return encode(gradient(w, h, mode), "PNG")


@cache
def all_modes() -> dict[str, bytes]:
    """name -> encoded bytes, one per mode/format case of the issue."""
    base = gradient(64, 48)
    out: dict[str, bytes] = {
        "jpeg_rgb": encode(base, "JPEG"),
        "jpeg_gray": encode(base.convert("L"), "JPEG"),
        "jpeg_cmyk": encode(base.convert("CMYK"), "JPEG"),
        "png_rgb": encode(base, "PNG"),
        "png_gray": encode(base.convert("L"), "PNG"),
        "png_rgba": encode(base.convert("RGBA"), "PNG"),
        "png_la": encode(base.convert("LA"), "PNG"),
        "png_palette": encode(base.convert("P"), "PNG"),
        "png_1bit": encode(base.convert("1"), "PNG"),
        "webp": encode(base, "WEBP"),
        "bmp": encode(base, "BMP"),
        "gif": encode(base.convert("P"), "GIF"),
    }
    rgba = base.convert("RGBA")
    rgba.putalpha(128)
    out["png_palette_transparent"] = encode(base.convert("P"), "PNG", transparency=0)
    out["webp_rgba"] = encode(rgba, "WEBP")
    # 16-bit gray PNG
    arr16 = (np.linspace(0, 65535, 64 * 48).reshape(48, 64)).astype(np.uint16)
    out["png_16bit"] = encode(Image.fromarray(arr16), "PNG")
    # animated GIF: the first frame is classified
    frames = [base.convert("P"), Image.new("RGB", (64, 48), (255, 0, 0)).convert("P")]
    out["gif_animated"] = encode(
        frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0
    )
    # EXIF orientation 6 (rotate 90 degrees clockwise to display)
    exif = Image.Exif()
    exif[0x0112] = 6
    out["jpeg_exif_rotated"] = encode(base, "JPEG", exif=exif.tobytes())
    return out
