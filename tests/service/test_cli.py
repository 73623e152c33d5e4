"""`xnornet predict`, settings from flags and XNORNET_* variables, the bundled models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from service import cli
from service.postprocess import BadOutput, topk
from service.settings import BUNDLED_MODELS, DEFAULT_MODEL, Settings
from xnornet.cli import main

from .images import jpeg
from .modelgen import FASHION_LABELS, tiny_model, write_version


def test_predict_by_name_and_by_path(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "x.jpg"
    image.write_bytes(jpeg())
    assert (
        main(["predict", str(image), "--repository", str(repo), "--json", "--top-k", "3", "--threads", "1"])
        == 0
    )
    by_name = json.loads(capsys.readouterr().out)
    assert len(by_name["predictions"]) == 3 and by_name["predictions"][0]["label"] in FASHION_LABELS
    model_file = repo / DEFAULT_MODEL / "1" / "model.xnor"
    assert main(["predict", str(image), "--model", str(model_file), "--json", "--top-k", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["predictions"] == by_name["predictions"]
    assert main(["predict", str(image), "--repository", str(repo)]) == 0
    assert "%" in capsys.readouterr().out


@pytest.mark.parametrize("softmax", [False, True])
def test_predict_and_classify_agree(
    softmax: bool, tmp_path: Path, make_client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`xnornet predict` and /v1/classify turn outputs into the same top-k (service.postprocess)."""
    write_version(tmp_path / "repo", "m", 1, tiny_model(3, softmax=softmax))
    image = tmp_path / "x.jpg"
    image.write_bytes(jpeg())
    args = ["predict", str(image), "--repository", str(tmp_path / "repo"), "--model", "m"]
    assert main([*args, "--json", "--top-k", "5", "--threads", "1"]) == 0
    predicted = json.loads(capsys.readouterr().out)["predictions"]
    with make_client(repository=tmp_path / "repo", default_model="m") as client:
        r = client.post("/v1/models/m/classify?top_k=5", content=image.read_bytes())
    assert r.status_code == 200, r.text
    classified = r.json()["predictions"]
    assert [(p["index"], p["label"]) for p in predicted] == [(p["index"], p["label"]) for p in classified]
    for a, b in zip(predicted, classified, strict=True):
        assert a["probability"] == pytest.approx(b["probability"], rel=1e-5, abs=1e-7)


def test_topk_of_probabilities_clips_negatives_and_falls_back_to_softmax() -> None:
    assert topk(np.array([-0.1, 0.3, 0.1], np.float32), "probabilities", 2) == [
        (1, pytest.approx(0.75)),
        (2, pytest.approx(0.25)),
    ]
    logits = np.array([-1.0, -2.0, 0.0], np.float32)
    assert topk(logits, "probabilities", 3) == topk(logits, "logits", 3)
    assert [i for i, _ in topk(logits, "logits", 3)] == [2, 0, 1]
    with pytest.raises(BadOutput):
        topk(np.array([np.nan, 1.0]), "logits", 1)


def test_predict_errors(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    assert main(["predict", str(bad), "--repository", str(repo)]) == 1
    assert "not an image" in capsys.readouterr().err
    assert main(["predict", str(bad), "--repository", str(repo), "--model", "absent"]) == 1


def test_settings_flags_override_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XNORNET_MAX_BATCH_SIZE", "7")
    monkeypatch.setenv("XNORNET_PORT", "9001")
    monkeypatch.setenv("XNORNET_VERSIONS", '{"m": 3}')
    monkeypatch.setenv("XNORNET_ADMIN_TOKEN", "")
    parser = argparse.ArgumentParser()
    cli.add_arguments("serve", parser)
    s = cli._settings_from(parser.parse_args(["--port", "9002", "--repository", str(tmp_path)]))
    assert (s.port, s.max_batch_size, s.repository, s.versions, s.admin_token) == (
        9002,
        7,
        tmp_path,
        {"m": 3},
        None,
    )


def test_serve_model_flag_makes_that_model_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """`xnornet serve --model resnet-e18` serves it at /v1/classify (README: ImageNet)."""
    monkeypatch.delenv("XNORNET_DEFAULT_MODEL", raising=False)
    parser = argparse.ArgumentParser()
    cli.add_arguments("serve", parser)

    def default(*argv: str) -> str:
        return cli._settings_from(parser.parse_args(list(argv))).default_model

    assert default("--model", "resnet-e18") == "resnet-e18"
    assert default("--model", "a", "--model", "b") == "a"
    assert default("--model", "a", "--model", DEFAULT_MODEL) == DEFAULT_MODEL  # the usual default stays
    assert default("--model", "a", "--default-model", "b") == "b"  # an explicit choice wins
    assert default() == DEFAULT_MODEL
    monkeypatch.setenv("XNORNET_MODELS", '["x"]')
    assert Settings().default_model == "x"


def test_settings_validation() -> None:
    with pytest.raises(ValueError):
        Settings(admin_token=SecretStr("short"))
    with pytest.raises(ValueError):
        Settings(max_batch_size=0)
    with pytest.raises(ValueError):
        Settings(isa="sse9")


def test_defaults_serve_the_bundled_repository() -> None:
    s = Settings()
    assert s.repository == BUNDLED_MODELS and s.default_model == "fashion-mnist-xnor"
    assert s.max_body_bytes == 8 * 1024 * 1024 and s.host == "127.0.0.1"


@pytest.mark.skipif(
    not (BUNDLED_MODELS / DEFAULT_MODEL / "1" / "model.xnor").exists(),
    reason="the trained bundled model is not in service/models yet",
)
def test_bundled_model_classifies(engine_ready: None) -> None:
    from fastapi.testclient import TestClient

    from service.app import create_app

    with TestClient(create_app(Settings(engine_threads=1))) as client:
        assert client.get("/readyz").status_code == 200
        r = client.post("/v1/classify", content=jpeg())
        assert r.status_code == 200 and r.json()["model"]["name"] == DEFAULT_MODEL
        assert len(r.json()["predictions"][0]["label"]) > 0


def test_benchmark_commands_come_from_entry_points(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`xnornet bench` / `loadtest` are plugged in by the benchmarks distribution; without it the
    command says what to install instead of failing on an import."""
    from xnornet import cli as dispatcher

    installed = dispatcher.plugins()
    assert {name: ep.value for name, ep in installed.items()} == {
        "bench": "benchmarks.engine_speed",
        "loadtest": "benchmarks.loadtest",
    }
    monkeypatch.setattr(dispatcher, "plugins", dict)  # as if the benchmarks were not installed
    for name in ("bench", "loadtest"):
        assert main([name, "--json"]) == 2
        err = capsys.readouterr().err
        assert f"xnornet {name}: comes with xnornet-benchmarks, not installed" in err
        assert "pip install -e ./benchmarks" in err
    assert main(["--help"]) == 0
    assert "bench     (needs xnornet-benchmarks: pip install -e ./benchmarks)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "cpus,workers,engine,pre",
    [(1, 1, 1, 1), (2, 1, 1, 2), (2, 2, 1, 1), (8, 1, 4, 8), (8, 2, 2, 4), (3, 4, 1, 1)],
)
def test_thread_plan_halves_the_share_for_the_engine(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    cpus: int,
    workers: int,
    engine: int,
    pre: int,
) -> None:
    import engine as engine_pkg

    monkeypatch.setattr(engine_pkg, "default_threads", lambda: cpus)
    with caplog.at_level("INFO", logger="xnornet.service"):
        planned = cli.plan_threads(Settings(workers=workers))
    assert (planned.engine_threads, planned.preprocess_threads) == (engine, pre)
    assert f"each with {engine} engine thread(s) (polling 0 rounds" in caplog.text
    # what an operator sets is kept
    kept = cli.plan_threads(Settings(workers=workers, engine_threads=3, preprocess_threads=5, engine_spin=7))
    assert (kept.engine_threads, kept.preprocess_threads, kept.engine_spin) == (3, 5, 7)


def test_engine_spin_bound_is_the_engines():
    """Settings refuses a polling count at start; its bound must be the engine's own."""
    from annotated_types import Le
    from engine._xnornet import lib

    bounds = [m.le for m in Settings.model_fields["engine_spin"].metadata if isinstance(m, Le)]
    assert bounds == [lib.XNOR_MAX_SPIN]
