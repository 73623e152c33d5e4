"""benchmarks.decode_fidelity on a handful of JPEGs (needs scikit-image's sample photos)."""

from __future__ import annotations

import pytest

pytest.importorskip("skimage")
pytest.importorskip("simplejpeg")

from benchmarks import decode_fidelity


def test_report_shape_and_sanity() -> None:
    report = decode_fidelity.measure(n_per_photo=1, seed=3)
    assert report["images"] == len(decode_fidelity.PHOTOS)
    for entry in report["models"].values():
        for k in ("shipped", "any_m8"):
            r = entry[k]
            assert 0.0 <= r["top1_agreement"] <= 1.0
            if r["reduced_images"]:
                assert r["psnr_db_min"] is None or r["psnr_db_min"] > 20  # a reduced decode, not garbage
        assert entry["noise_floor"]["psnr_db_median"] > 45  # +-1 everywhere: ~49.5 dB
