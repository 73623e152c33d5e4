"""The image the service benchmarks send."""

from __future__ import annotations

import io

import numpy as np


def synthetic_jpeg(width: int = 640, height: int = 480, seed: int = 0) -> bytes:
    """A deterministic photo-like JPEG: smooth shapes, edges and mild sensor noise, quality 90.

    Its compressed size (~90 KB at 640x480) is that of a real photo of this size; entropy
    decoding, which even a reduced-size (draft) decode cannot skip, is proportional to it.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.empty((height, width, 3), np.float32)
    for c in range(3):
        img[..., c] = 60 + 120 * (0.5 + 0.5 * np.sin(xx / (40 + 25 * c) + yy / (70 - 10 * c) + c))
    for _ in range(12):  # discs of flat color: edges for the DCT to spend bits on
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(20, 120)
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        img[mask] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 6, img.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()
