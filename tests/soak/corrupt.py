"""Corrupt model files for "offered as a new version" tests: each is rejected by the engine.

Every corruption starts from a valid file written by engine.format; `shape_mismatch` rewrites
a header field and recomputes the CRC, so only the loader's shape checks can catch it.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

from engine import format as fmt
from tests.service.modelgen import tiny_model


def _fix_crc(data: bytearray) -> bytes:
    struct.pack_into("<I", data, 12, 0)
    struct.pack_into("<I", data, 12, zlib.crc32(bytes(data)))
    return bytes(data)


def truncated(d: bytes) -> bytes:
    return d[: len(d) * 2 // 3]


def flipped_byte(d: bytes) -> bytes:
    b = bytearray(d)
    b[-10] ^= 0xFF
    return bytes(b)


def bad_magic(d: bytes) -> bytes:
    return b"XNORNEX\x00" + d[8:]


def wrong_version(d: bytes) -> bytes:
    b = bytearray(d)
    struct.pack_into("<I", b, 8, fmt.VERSION + 1)
    return _fix_crc(b)


def trailing_data(d: bytes) -> bytes:
    return d + b"\x00" * 64


def shape_mismatch(d: bytes) -> bytes:
    """Input height 28 -> 29 (header offset 100) with a valid CRC: the conv chain no longer
    produces the 8 x 7 x 7 the linear layer's weights were made for."""
    b = bytearray(d)
    (h,) = struct.unpack_from("<I", b, 100)
    struct.pack_into("<I", b, 100, h + 1)
    return _fix_crc(b)


CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "truncated": truncated,
    "flipped_byte": flipped_byte,
    "bad_magic": bad_magic,
    "wrong_version": wrong_version,
    "trailing_data": trailing_data,
    "shape_mismatch": shape_mismatch,
}


def write_corrupt_version(repo: Path, name: str, version: int, how: str, *, seed: int = 0) -> Path:
    good = fmt.to_bytes(tiny_model(seed))
    path = repo / name / str(version) / "model.xnor"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(CORRUPTIONS[how](good))
    tmp.replace(path)
    return path
