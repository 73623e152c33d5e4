"""The README's ImageNet section as a user runs it: `xnornet pull NAME --repository models`,
then `xnornet serve --repository models --model NAME`, as real processes. The release file is a
synthetic one of the exact Larq layout (random weights), served from loopback behind a test
catalogue given by XNORNET_CATALOG."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytest.importorskip("h5py", reason="h5py is not installed (pip install 'xnornet[import]')")

from tests.importers import keras_ref as kr
from tests.service.images import jpeg
from tests.training.fileserver import serving
from tests.training.test_pull import FILE, IMAGENET, entry
from training.catalog import SCHEMA

from .conftest import ROOT, serve


def test_pull_then_serve_answers_imagenet_top5(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    kr.write_h5(files / FILE, kr.resnet_e18(seed=41, width=0.125, size=64))
    with serving(files) as srv:
        catalog = tmp_path / "catalog.json"
        e = entry(srv.url(FILE), (files / FILE).read_bytes())
        catalog.write_text(json.dumps({"schema": SCHEMA, "models": [e]}))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("XNORNET_")},
            "XNORNET_CATALOG": str(catalog),
            "XNORNET_CACHE": str(tmp_path / "cache"),
        }
        pulled = subprocess.run(
            [sys.executable, "-m", "xnornet", "pull", "resnet-e18", "--repository", "models"],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert pulled.returncode == 0, pulled.stderr
    assert "xnornet serve --repository models --model resnet-e18" in pulled.stdout
    assert "100%" in pulled.stderr  # the progress line's last state
    with serve(tmp_path / "models", "--model", "resnet-e18") as server:
        r = httpx.post(
            server.url + "/v1/classify",
            content=jpeg(320, 240),
            headers={"Content-Type": "image/jpeg"},
            timeout=30,
        )
        listed = httpx.get(server.url + "/v1/models").json()
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"]["name"] == "resnet-e18" and body["model"]["version"] == 1
    labels = [p["label"] for p in body["predictions"]]
    assert len(labels) == 5 and set(labels) <= set(IMAGENET)
    assert listed["default_model"] == "resnet-e18"
    assert [m["task"]["summary"] for m in listed["models"]] == ["ImageNet, 1000 classes"]
