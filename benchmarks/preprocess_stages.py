"""Time image preprocessing (service/imaging.py) stage by stage.

    python -m benchmarks.preprocess_stages [--image F] [--repeat N] [--spec NAME ...]

For each model spec, prints the median milliseconds of each stage of `imaging.preprocess`
(run one after the other, as preprocess runs them) and of preprocess() itself end to end.
The image defaults to the service benchmark's synthetic 640x480 quality-90 photo-like JPEG.

Specs: "fashion" (the bundled Fashion-MNIST model: gray, exact 28x28), "alexnet" (the XNOR
AlexNet architecture: rgb, shorter side 256, center crop 227), "alexnet_bgr" (the same in BGR
order) and "larq" (a Larq Zoo import: central_crop_bicubic to 224). The first two come from the
engine's ModelInfo, as the service builds them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace

from service import imaging
from service.imaging import InputSpec
from service.settings import BUNDLED_MODELS

MAX_PIXELS = 40_000_000
STAGES = ("open", "decode", "orient", "to_8bit", "resize", "normalize", "sum", "total")


def model_specs() -> dict[str, InputSpec]:
    import engine
    from engine import format as fmt

    from . import architectures

    fashion = engine.Model.load(str(BUNDLED_MODELS / "fashion-mnist-xnor" / "1" / "model.xnor"), threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "alexnet.xnor")
        fmt.write_model(architectures.alexnet(seed=0, width=0.25), path)  # width: same input spec
        alexnet = engine.Model.load(path, threads=1)
        alex = InputSpec.from_info(alexnet.info)
    larq = InputSpec(
        3, 224, 224, "rgb", "central_crop_bicubic", 0, 1.0, (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
    )
    return {
        "fashion": InputSpec.from_info(fashion.info),
        "alexnet": alex,
        "alexnet_bgr": replace(alex, color="bgr"),
        "larq": larq,
    }


def time_stages(data: bytes, spec: InputSpec, repeat: int, warmup: int = 20) -> dict[str, float]:
    """Median milliseconds per stage over `repeat` runs (after `warmup` untimed ones)."""
    times: dict[str, list[float]] = {k: [] for k in STAGES}
    clock = time.perf_counter
    for i in range(warmup + repeat):
        t0 = clock()
        img = imaging.open_image(data, MAX_PIXELS)
        t1 = clock()
        imaging._draft(img, spec)
        img.load()
        t2 = clock()
        img = imaging._orient(img)
        t3 = clock()
        img = imaging._to_8bit(img, spec.color)
        t4 = clock()
        pixels = imaging._pixels(img, spec)  # resize (or central_crop_bicubic) -> ndarray
        t5 = clock()
        imaging.normalize(pixels, spec)
        t6 = clock()
        img.close()
        imaging.preprocess(data, spec, MAX_PIXELS)
        t7 = clock()
        if i < warmup:
            continue
        ends = (t0, t1, t2, t3, t4, t5, t6)
        for name, a, b in zip(STAGES[:6], ends[:-1], ends[1:], strict=True):
            times[name].append((b - a) * 1e3)
        times["sum"].append((t6 - t0) * 1e3)
        times["total"].append((t7 - t6) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def _image(path: str | None) -> tuple[bytes, str]:
    if path:
        with open(path, "rb") as f:
            return f.read(), path
    from .images import synthetic_jpeg

    return synthetic_jpeg(), "synthetic 640x480 q90 JPEG (benchmarks.images.synthetic_jpeg)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--image", help="an image file (default: a synthetic 640x480 q90 JPEG)")
    ap.add_argument("--repeat", type=int, default=300, help="timed runs per spec (default 300)")
    ap.add_argument("--spec", action="append", help="only these specs (repeatable)")
    args = ap.parse_args(argv)
    data, what = _image(args.image)
    specs = model_specs()
    names = args.spec or list(specs)
    unknown = [n for n in names if n not in specs]
    if unknown:
        ap.error(f"unknown spec {unknown}; choose from {list(specs)}")
    print(f"image: {what}, {len(data)} bytes; median ms of {args.repeat} runs; 'sum' = the stages, "
          f"'total' = preprocess() end to end")  # fmt: skip
    print(f"{'spec':<12}" + "".join(f"{s:>12}" for s in STAGES))
    for name in names:
        med = time_stages(data, specs[name], args.repeat)
        print(f"{name:<12}" + "".join(f"{med[s]:>12.3f}" for s in STAGES))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
