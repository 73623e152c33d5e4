"""benchmarks/int8_accuracy.py on small data: every measurement is made and reported."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import int8_accuracy as acc


def test_natural_images_are_pixels_of_the_asked_size() -> None:
    images, kinds = acc.natural_images(10, 64, seed=3)
    assert images.shape == (10, 64, 64, 3) and images.dtype == np.uint8
    assert sum(kinds.values()) == 10
    assert images.std() > 10  # not blank


def test_small_run_reports_every_measurement(capsys: pytest.CaptureFixture[str]) -> None:
    rc = acc.main(["--json", "--fmnist-limit", "300", "--images", "8", "--width", "0.125", "--threads", "1"])
    r = json.loads(capsys.readouterr().out)
    assert rc == (0 if r["ok"] else 1)
    fm = r["fashion_mnist"]
    if fm is not None:  # Debian's dataset-fashion-mnist installed
        for mode in ("xnor", "bwn"):
            assert fm[mode]["gate_applies"] is False  # 300 images: reported, not gated
            assert 0.8 < fm[mode]["top1_int8"] <= 1.0
            assert abs(fm[mode]["drop_points"]) < 2.0
    for name in ("alexnet-xnor", "binary-resnet-e18"):
        s = r["imagenet_size"][name]
        assert s["images"] == 8
        assert 0.0 <= s["sign_flips"] <= acc.MAX_SIGN_FLIPS
        assert 0.0 < s["logit_error_max"] <= 0.05
        assert 0.0 <= s["top1_agreement"] <= 1.0
        assert s["file_bytes_int8"] < s["file_bytes_float32"]
