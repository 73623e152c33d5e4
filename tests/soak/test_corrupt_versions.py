"""Through the service: each corrupt file offered as a new version is rejected, and
the old version keeps answering with byte-identical predictions."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx

from tests.e2e.conftest import MODEL, TOKEN, serve
from tests.service.images import all_modes
from tests.service.modelgen import write_version

from .corrupt import CORRUPTIONS, write_corrupt_version

AUTH = {"Authorization": f"Bearer {TOKEN}"}
IMAGES = ["png_rgb", "jpeg_gray", "gif_animated", "webp", "png_16bit"]
ENGINE_ERRORS = {
    "truncated": "TruncatedError",
    "flipped_byte": "ChecksumError",
    "bad_magic": "BadMagicError",
    "wrong_version": "BadVersionError",
    "trailing_data": "TrailingDataError",
    "shape_mismatch": "ShapeMismatchError",
}


def answers(c: httpx.Client) -> list[bytes]:
    """What the served version says about a fixed set of inputs, as bytes: /v1 predictions
    and model identity (not the timings), and the raw /v2 output tensor."""
    out = []
    for name in IMAGES:
        r = c.post("/v1/classify?top_k=10", content=all_modes()[name])
        assert r.status_code == 200, r.text
        body = r.json()
        out.append(json.dumps([body["model"], body["predictions"]]).encode())
    b64 = [base64.b64encode(all_modes()[n]).decode() for n in IMAGES]
    r = c.post(
        f"/v2/models/{MODEL}/infer",
        json={"inputs": [{"name": "image", "datatype": "BYTES", "shape": [len(b64)], "data": b64}]},
    )
    assert r.status_code == 200, r.text
    out.append(r.content)
    return out


def test_each_corrupt_version_is_rejected_and_the_old_one_answers_identically(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_version(repo, MODEL, 1, seed=1)
    with (
        serve(repo, env={"XNORNET_ADMIN_TOKEN": TOKEN}) as srv,
        httpx.Client(base_url=srv.url, timeout=30) as c,
    ):
        reference = answers(c)
        sha = c.get("/admin/models", headers=AUTH).json()["models"][0]["served"]["sha256"]
        for version, how in enumerate(CORRUPTIONS, start=2):
            write_corrupt_version(repo, MODEL, version, how)
            r = c.post(f"/admin/models/{MODEL}/load", headers=AUTH)
            assert r.status_code == 422, (how, r.status_code, r.text)
            err = r.json()["error"]
            assert err["code"] == "model_load_failed", (how, err)
            assert f"version {version}" in err["message"] and ENGINE_ERRORS[how] in err["message"], (how, err)
            assert str(tmp_path) not in err["message"], err  # no file paths in errors
            # explicitly asking for the version fails the same way
            r = c.post(f"/admin/models/{MODEL}/load", headers=AUTH, json={"version": version})
            assert r.status_code == 422, (how, r.text)
            listing = c.get("/admin/models", headers=AUTH).json()["models"][0]
            assert listing["served"]["version"] == 1 and listing["served"]["sha256"] == sha, (how, listing)
            assert answers(c) == reference, how
            assert c.get("/readyz").status_code == 200
        metrics = c.get("/metrics").text
        assert (
            f'xnornet_model_loads_total{{model="{MODEL}",result="error"}} {2.0 * len(CORRUPTIONS)}' in metrics
        )
        # a good version after all that is still taken
        write_version(repo, MODEL, 2 + len(CORRUPTIONS), seed=7)
        r = c.post(f"/admin/models/{MODEL}/load", headers=AUTH)
        assert r.status_code == 200 and r.json()["loaded"]["version"] == 2 + len(CORRUPTIONS)
        assert answers(c) != reference
    assert "Traceback" not in srv.output()
