"""What decoding JPEGs at reduced size changes: the model input's PSNR and the model's top-1.

    python -m benchmarks.decode_fidelity [--variants 60] [--seed 0] [--json]

Real photos (scikit-image's sample photos: the benchmarks' 'accuracy' extra) are cropped, flipped,
resized to long sides from 480 to 4032 pixels and saved as JPEGs of quality 75-95. Each JPEG
goes into the model's input three ways:

  full     decoded at full size, then the service's crop + resize (engine.preprocess)
  shipped  service.imaging.preprocess: decoded at 1/2, 1/4 or 1/8 when the image is that much
           larger than needed (the scales Pillow's draft() uses)
  any_m8   decoded at the smallest M/8 scale (1/8 .. 8/8) that keeps both sides >= needed

and, as a noise floor, the full input with every value moved by -1, 0 or +1 at random.

For the seeded XNOR AlexNet (rgb, shorter side 256, crop 227) and the bundled Fashion-MNIST
model (gray 28x28), it reports the PSNR of the final uint8 model input against `full` (over the
images whose decode was reduced) and the fraction of images whose top-1 class equals `full`'s.
The seeded AlexNet has no trained weights: its top-1 is a sensitivity test of the input, not
an accuracy.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np

PHOTOS = (
    "astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
    "stereo_motorcycle", "camera",
)  # fmt: skip
LONG_SIDES = (480, 640, 800, 1024, 1600, 2048, 3024, 4032)


def photos() -> dict[str, np.ndarray]:
    import skimage.data

    out = {}
    for name in PHOTOS:
        a = getattr(skimage.data, name)()
        a = a[0] if isinstance(a, tuple) else a
        out[name] = a if a.ndim == 3 else np.stack([a] * 3, axis=2)
    return out


def variants(n_per_photo: int, seed: int) -> Iterator[tuple[str, bytes]]:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name, a in photos().items():
        h, w = a.shape[:2]
        for i in range(n_per_photo):
            area = rng.uniform(0.4, 1.0)
            aspect = math.exp(rng.uniform(math.log(0.6), math.log(1.7)))
            cw = min(w, max(16, round(math.sqrt(area * w * h * aspect))))
            ch = min(h, max(16, round(math.sqrt(area * w * h / aspect))))
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            img = Image.fromarray(np.ascontiguousarray(a[y0 : y0 + ch, x0 : x0 + cw]))
            if rng.random() < 0.5:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            side = int(rng.choice(LONG_SIDES))
            f = side / max(img.size)
            img = img.resize(
                (max(1, round(img.size[0] * f)), max(1, round(img.size[1] * f))), Image.Resampling.LANCZOS
            )
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=int(rng.choice((75, 85, 95))))
            yield f"{name}-{i}", buf.getvalue()


def _full(data: bytes, spec: Any) -> np.ndarray:
    import simplejpeg

    from service import imaging

    px = simplejpeg.decode_jpeg(data, colorspace="GRAY" if spec.color == "gray" else "RGB")
    return imaging.resize_to_input(px, spec)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def measure(n_per_photo: int, seed: int) -> dict[str, Any]:
    import engine
    from engine import format as fmt
    from service import imaging
    from service.settings import BUNDLED_MODELS

    from . import architectures
    from .preprocess_stages import all_jpeg_scales

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "alexnet.xnor")
        fmt.write_model(architectures.alexnet(seed=0), path)
        models = {
            "alexnet_xnor_seeded": engine.Model.load(path),
            "fashion_mnist_xnor": engine.Model.load(
                str(BUNDLED_MODELS / "fashion-mnist-xnor" / "1" / "model.xnor")
            ),
        }
    images = list(variants(n_per_photo, seed))
    report: dict[str, Any] = {"images": len(images), "photos": list(PHOTOS), "models": {}}
    for mname, model in models.items():
        spec = model.info.input
        inputs: dict[str, list[np.ndarray]] = {"full": [], "shipped": [], "any_m8": [], "noise": []}
        rng = np.random.default_rng(seed)
        reduced: dict[str, list[bool]] = {"shipped": [], "any_m8": []}
        for _, data in images:
            full = _full(data, spec)
            inputs["full"].append(full)
            # the noise floor: every pixel of the full decode's input moved by -1, 0 or +1
            step = rng.integers(-1, 2, full.shape)
            inputs["noise"].append(np.clip(full.astype(np.int16) + step, 0, 255).astype(np.uint8))
            inputs["shipped"].append(imaging.preprocess(data, spec, 100_000_000))
            with all_jpeg_scales():
                inputs["any_m8"].append(imaging.preprocess(data, spec, 100_000_000))
            from PIL import Image

            w, h = Image.open(io.BytesIO(data)).size
            need = imaging._need(spec)
            reduced["shipped"].append(imaging._jpeg_reduction((w, h), need) > 1)
            reduced["any_m8"].append(-(-w * 7 // 8) >= need and -(-h * 7 // 8) >= need)
        top1 = {}
        for k, xs in inputs.items():
            tops = []
            for i in range(0, len(xs), 16):
                tops.extend(np.argmax(model.infer(np.stack(xs[i : i + 16])), axis=1).tolist())
            top1[k] = np.asarray(tops)
        entry: dict[str, Any] = {
            "distinct_top1_full": len(set(top1["full"].tolist())),
            "noise_floor": {
                "psnr_db_median": round(
                    statistics.median(
                        psnr(a, b) for a, b in zip(inputs["noise"], inputs["full"], strict=True)
                    ),
                    2,
                ),
                "top1_agreement": round(float(np.mean(top1["noise"] == top1["full"])), 4),
            },
        }
        for k in ("shipped", "any_m8"):
            idx = [i for i, r in enumerate(reduced[k]) if r]
            ps = [psnr(inputs[k][i], inputs["full"][i]) for i in idx]
            finite = [p for p in ps if math.isfinite(p)]
            entry[k] = {
                "reduced_images": len(idx),
                "psnr_db_median": round(statistics.median(finite), 2) if finite else None,
                "psnr_db_min": round(min(finite), 2) if finite else None,
                "identical_inputs": len(ps) - len(finite),
                "top1_agreement": round(float(np.mean(top1[k] == top1["full"])), 4),
                "top1_agreement_reduced": round(float(np.mean(top1[k][idx] == top1["full"][idx])), 4)
                if idx
                else None,
            }
        report["models"][mname] = entry
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--variants", type=int, default=60, help="JPEGs made from each photo (default 60)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        import skimage  # noqa: F401
    except ImportError:
        print("decode_fidelity needs scikit-image: pip install -e './benchmarks[accuracy]'", file=sys.stderr)
        return 2
    report = measure(args.variants, args.seed)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['images']} JPEGs from {len(PHOTOS)} photos; against the full-size decode:")
    for mname, e in report["models"].items():
        print(f"\n{mname} (distinct top-1 classes over the full decodes: {e['distinct_top1_full']})")
        nf = e["noise_floor"]
        print(f"  noise floor (+-1 on every pixel of the full input): PSNR {nf['psnr_db_median']} dB, "
              f"top-1 agreement {nf['top1_agreement']:.4f}")  # fmt: skip
        for k in ("shipped", "any_m8"):
            r = e[k]
            print(f"  {k:<8} reduced {r['reduced_images']:>4}  PSNR median {r['psnr_db_median']} dB, "
                  f"min {r['psnr_db_min']} dB, identical {r['identical_inputs']}  top-1 agreement "
                  f"{r['top1_agreement']:.4f} (reduced only: {r['top1_agreement_reduced']})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
