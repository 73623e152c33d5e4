"""benchmarks.preprocess_stages runs end to end on its built-in images (one timed run each)."""

from __future__ import annotations

import pytest

from benchmarks import preprocess_stages
from service import imaging


@pytest.mark.parametrize("scales", ["power2", "all"])
def test_runs_and_restores(scales: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = imaging._decode_jpeg
    args = ["--image", "jpeg640", "--image", "png640", "--repeat", "1", "--spec", "fashion", "--spec", "larq"]
    assert preprocess_stages.main([*args, "--jpeg-scales", scales]) == 0
    out = capsys.readouterr().out
    assert out.count("fashion") == 2 and out.count("larq") == 2 and "resize" in out
    assert imaging._decode_jpeg is before  # the M/8 experiment never outlives the run


def test_engine_column() -> None:
    import engine
    from service.settings import BUNDLED_MODELS

    model = engine.Model.load(str(BUNDLED_MODELS / "fashion-mnist-xnor" / "1" / "model.xnor"), threads=1)
    target = preprocess_stages.Target(model.info.input, model)
    data = preprocess_stages.builtin_images()["jpeg640"]()
    med = preprocess_stages.time_stages(data, target, repeat=1, warmup=0)
    assert set(med) == set(preprocess_stages.STAGES) and med["engine"] > 0
