"""Hostile and awkward upload bodies, built in memory (bombs are hand-made headers: their
pixels are never allocated, here or, if the service is right, in the server).
"""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
import zlib

from PIL import Image

from tests.service.images import encode, gradient, jpeg, png


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


PNG_SIG = b"\x89PNG\r\n\x1a\n"


def png_bomb(width: int, height: int) -> bytes:
    """An RGB PNG whose IHDR claims width x height; the IDAT holds one compressed row."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    row = zlib.compress(b"\x00" * (1 + 3 * min(width, 1 << 16)), 9)
    return PNG_SIG + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", row) + _png_chunk(b"IEND", b"")


def png_header_only(width: int = 64, height: int = 48) -> bytes:
    """Signature + IHDR + IEND: a size, no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIG + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")


def png_bad_crc() -> bytes:
    data = bytearray(png())
    data[29] ^= 0xFF  # the IHDR's CRC
    return bytes(data)


def gif_bomb(width: int = 65535, height: int = 65535) -> bytes:
    """A GIF89a whose logical screen and only frame claim width x height."""
    head = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    return head + frame + b"\x02\x02\x44\x01\x00" + b"\x3b"


def jpeg_bomb(width: int = 65500, height: int = 65500) -> bytes:
    """SOI, a baseline SOF0 claiming width x height (gray), an SOS header, a few bytes, EOI."""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + sof + sos + b"\x00" * 64 + b"\xff\xd9"


def bmp_bomb(width: int = 50000, height: int = 50000) -> bytes:
    """BITMAPFILEHEADER + BITMAPINFOHEADER of a 24-bit width x height image, no pixel data."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    size = 14 + len(info) + width * height * 3
    return b"BM" + struct.pack("<IHHI", size & 0xFFFFFFFF, 0, 0, 54) + info


def webp_bomb(width: int = 16383, height: int = 16383) -> bytes:
    """An extended WebP (VP8X) whose canvas claims width x height, with no image data."""
    vp8x = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


def jpeg_header_only() -> bytes:
    """A real JPEG cut right after its SOS header: every marker, no entropy-coded data."""
    data = jpeg(64, 48)
    sos = data.index(b"\xff\xda")
    (length,) = struct.unpack(">H", data[sos + 2 : sos + 4])
    return data[: sos + 2 + length]


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: max(1, int(len(data) * keep))]


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("image.png", png())
    return buf.getvalue()


def tiff() -> bytes:
    return encode(gradient(), "TIFF")


def eps() -> bytes:
    return (
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 48\n%%EndComments\n"
        b"newpath 0 0 moveto 64 48 lineto stroke showpage\n%%EOF\n"
    )


def other_format(fmt: str) -> bytes:
    img = gradient()
    if fmt in ("PCX", "TGA", "PPM", "ICO"):
        return encode(img, fmt)
    raise ValueError(fmt)


def svg() -> bytes:
    return b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>'


def html() -> bytes:
    return b"<!doctype html><html><body><img src=x onerror=alert(1)><script>1</script></body></html>"


def gz() -> bytes:
    return gzip.compress(png())


def strip(w: int, h: int) -> bytes:
    return encode(Image.new("RGB", (w, h), (200, 30, 90)), "PNG")


def multipart(parts: list[tuple[str, str | None, str | None, bytes]], boundary: str) -> bytes:
    """parts: (field name, filename or None, content type or None, payload)."""
    out = []
    for name, filename, ctype, payload in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        head = f"--{boundary}\r\nContent-Disposition: {disp}\r\n"
        if ctype:
            head += f"Content-Type: {ctype}\r\n"
        out.append(head.encode() + b"\r\n" + payload + b"\r\n")
    return b"".join(out) + f"--{boundary}--\r\n".encode()
