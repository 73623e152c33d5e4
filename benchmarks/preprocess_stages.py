"""CPU time of one image's way into the model, stage by stage (service/imaging.py, the engine).

    python -m benchmarks.preprocess_stages [--image NAME|FILE ...] [--repeat N] [--spec NAME ...]
                                           [--engine] [--jpeg-scales power2|all]

For each image and model spec, prints the median CPU milliseconds (this thread's CPU time,
time.thread_time: what the request costs, not what the neighbours cost it) of each stage as
`imaging.preprocess` runs them, and of preprocess() itself end to end:

  open      identify the format, read the header, check the pixel limit (Pillow)
  decode    decode no larger than the model needs, convert to gray/RGB, apply EXIF orientation
  resize    crop + resize into the model's input (uint8 in C; Larq: TF bicubic + normalize)
  engine    with --engine: Model.infer on that one image (uint8 pixels, normalized by the
            engine), 1 thread (bundled model, seeded XNOR AlexNet with the default int8 edges;
            none for the other specs)

Images: "jpeg640" (the service benchmark's synthetic 640x480 quality-90 JPEG, the default),
"jpeg4032" (the same generator at 4032x3024, a 12 MP phone photo), "png640" (jpeg640's pixels
as PNG), or a path. Specs: "fashion" (the bundled Fashion-MNIST model: gray, exact 28x28),
"alexnet" (the seeded XNOR AlexNet: rgb, shorter side 256, center crop 227), "alexnet_bgr"
(the same in BGR order) and "larq" (a Larq Zoo import: central_crop_bicubic to 224).

`--jpeg-scales all` lets libjpeg-turbo decode at any M/8 scale (the smallest that keeps both
sides >= the size the model needs) instead of only 1/2, 1/4 and 1/8: the measurement behind
service/imaging.py's choice.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from service import imaging
from service.imaging import InputSpec
from service.settings import BUNDLED_MODELS

MAX_PIXELS = 40_000_000
STAGES = ("open", "decode", "resize", "engine", "sum", "total")


@dataclass
class Target:
    spec: InputSpec
    model: Any = None  # engine.Model for --engine


def targets(with_engine: bool) -> dict[str, Target]:
    import engine
    from engine import format as fmt
    from engine.int8 import DEFAULT_EDGES

    from . import architectures

    fashion = engine.Model.load(str(BUNDLED_MODELS / "fashion-mnist-xnor" / "1" / "model.xnor"), threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "alexnet.xnor")
        # the full network for --engine, with the edges exporters write by default (as the
        # service benchmark serves it); the input spec is the same at any width
        width = 1.0 if with_engine else 0.25
        fmt.write_model(architectures.alexnet(seed=0, width=width, edges=DEFAULT_EDGES), path)
        alexnet = engine.Model.load(path, threads=1)
    alex = alexnet.info.input
    larq = InputSpec(
        3, 224, 224, "rgb", "central_crop_bicubic", 0, 1.0, (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
    )
    return {
        "fashion": Target(fashion.info.input, fashion if with_engine else None),
        "alexnet": Target(alex, alexnet if with_engine else None),
        "alexnet_bgr": Target(replace(alex, color="bgr")),
        "larq": Target(larq),
    }


def time_stages(data: bytes, target: Target, repeat: int, warmup: int = 5) -> dict[str, float]:
    """Median CPU milliseconds per stage over `repeat` runs (after `warmup` untimed ones)."""
    spec = target.spec
    times: dict[str, list[float]] = {k: [] for k in STAGES}
    clock = time.thread_time
    for i in range(warmup + repeat):
        t0 = clock()
        img = imaging.open_image(data, MAX_PIXELS)
        t1 = clock()
        if spec.resize == "central_crop_bicubic":
            from service.tf_resize import central_crop_bicubic

            img.load()
            pixels = np.asarray(imaging._to_8bit(imaging._orient(img), spec.color), dtype=np.uint8)
            t2 = clock()
            x = imaging.normalize(central_crop_bicubic(pixels, spec.height, spec.width), spec)
        else:
            pixels = imaging.decode(img, data, spec)
            t2 = clock()
            x = imaging.resize_to_input(pixels, spec)
        t3 = clock()
        if target.model is not None:
            target.model.infer(x[None])
        t4 = clock()
        img.close()
        imaging.preprocess(data, spec, MAX_PIXELS)
        t5 = clock()
        if i < warmup:
            continue
        ends = (t0, t1, t2, t3, t4)
        for name, a, b in zip(STAGES[:4], ends[:-1], ends[1:], strict=True):
            times[name].append((b - a) * 1e3)
        times["sum"].append((t4 - t0) * 1e3)
        times["total"].append((t5 - t4) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


@contextmanager
def all_jpeg_scales() -> Iterator[None]:
    """Let imaging decode JPEGs at any M/8 scale (the smallest keeping both sides >= need)."""
    real_decode = imaging._decode_jpeg

    def decode_any_scale(img: Any, data: bytes, spec: InputSpec) -> np.ndarray | None:
        sj = imaging.simplejpeg
        if sj is None or img.format != "JPEG" or img.mode not in ("RGB", "L"):
            return None
        need = imaging._need(spec)
        w, h = img.size
        m = next((m for m in range(1, 9) if -(-w * m // 8) >= need and -(-h * m // 8) >= need), 8)
        colorspace = "GRAY" if spec.color == "gray" else "RGB"
        px = sj.decode_jpeg(data, colorspace=colorspace, min_height=-(-h * m // 8), min_width=-(-w * m // 8))
        return imaging._orient_array(px, img.getexif().get(0x0112, 1))

    imaging._decode_jpeg = decode_any_scale
    try:
        yield
    finally:
        imaging._decode_jpeg = real_decode


def builtin_images() -> dict[str, Callable[[], bytes]]:
    from .images import synthetic_jpeg

    def png640() -> bytes:
        from PIL import Image

        buf = io.BytesIO()
        Image.open(io.BytesIO(synthetic_jpeg())).save(buf, "PNG")
        return buf.getvalue()

    return {"jpeg640": synthetic_jpeg, "jpeg4032": lambda: synthetic_jpeg(4032, 3024), "png640": png640}


def _image(name: str) -> tuple[bytes, str]:
    made = builtin_images()
    if name in made:
        return made[name](), name
    with open(name, "rb") as f:
        return f.read(), name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument(
        "--image", action="append", help="jpeg640 (default), jpeg4032, png640 or a file (repeatable)"
    )
    ap.add_argument("--repeat", type=int, default=100, help="timed runs per image and spec (default 100)")
    ap.add_argument("--spec", action="append", help="only these specs (repeatable)")
    ap.add_argument("--engine", action="store_true", help="also time the engine (fashion, alexnet)")
    ap.add_argument("--jpeg-scales", choices=("power2", "all"), default="power2")
    args = ap.parse_args(argv)
    tg = targets(args.engine)
    names = args.spec or list(tg)
    unknown = [n for n in names if n not in tg]
    if unknown:
        ap.error(f"unknown spec {unknown}; choose from {list(tg)}")
    print(f"median CPU ms of {args.repeat} runs (thread time); 'sum' = the stages, "
          f"'total' = preprocess() end to end; JPEG scales: {args.jpeg_scales}")  # fmt: skip
    with all_jpeg_scales() if args.jpeg_scales == "all" else _nothing():
        for image in args.image or ["jpeg640"]:
            data, what = _image(image)
            print(f"\nimage: {what}, {len(data)} bytes")
            print(f"{'spec':<12}" + "".join(f"{s:>10}" for s in STAGES))
            for name in names:
                repeat = max(3, args.repeat // 10) if "4032" in what else args.repeat
                med = time_stages(data, tg[name], repeat)
                print(f"{name:<12}" + "".join(f"{med[s]:>10.3f}" for s in STAGES))
                sys.stdout.flush()
    return 0


@contextmanager
def _nothing() -> Iterator[None]:
    yield


if __name__ == "__main__":
    raise SystemExit(main())
