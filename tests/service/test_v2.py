"""The Open Inference Protocol v2 endpoints against the spec's JSON schema."""

from __future__ import annotations

import base64
import math
from typing import Any

import pytest

from . import oip_schema as oip
from .conftest import MODEL
from .images import jpeg, png

SHAPE = [1, 28, 28]


def tensor_request(n: int = 1, value: float = 0.25, **extra: Any) -> dict[str, Any]:
    shape = [n, *SHAPE] if n else SHAPE
    return {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": shape, "data": [value] * math.prod(shape)}],
        **extra,
    }


def error(r: Any, status: int) -> str:
    assert r.status_code == status, r.text
    return oip.ErrorResponse.model_validate(r.json()).error


def test_server_endpoints(client: Any) -> None:
    oip.ServerMetadataResponse.model_validate(client.get("/v2").json())
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 200


def test_model_metadata_and_ready(client: Any) -> None:
    for path in (f"/v2/models/{MODEL}", f"/v2/models/{MODEL}/versions/1"):
        meta = oip.ModelMetadataResponse.model_validate(client.get(path).json())
        assert meta.name == MODEL and meta.versions == ["1"]
        assert meta.inputs[0].datatype == "FP32" and meta.inputs[0].shape == [-1, *SHAPE]
        assert meta.outputs[0].shape == [-1, 10]
    assert client.get(f"/v2/models/{MODEL}/ready").status_code == 200
    assert client.get(f"/v2/models/{MODEL}/versions/1/ready").status_code == 200
    assert client.get(f"/v2/models/{MODEL}/versions/7/ready").status_code == 400
    error(client.get("/v2/models/nope"), 404)
    error(client.get(f"/v2/models/{MODEL}/versions/7"), 404)
    error(client.get("/v2/models/nope/ready"), 404)


@pytest.mark.parametrize("n", [0, 1, 3])
def test_fp32_infer(client: Any, n: int) -> None:
    r = client.post(
        f"/v2/models/{MODEL}/infer", json=tensor_request(n, id="abc", outputs=[{"name": "output"}])
    )
    assert r.status_code == 200, r.text
    resp = oip.InferenceResponse.model_validate(r.json())
    assert resp.model_name == MODEL and resp.model_version == "1" and resp.id == "abc"
    (out,) = resp.outputs
    assert out.name == "output" and out.datatype == "FP32" and out.shape == [max(n, 1), 10]
    assert len(out.data) == max(n, 1) * 10
    if n == 3:
        assert out.data[:10] == out.data[10:20]  # same input rows, same outputs


def test_nested_data_is_accepted(client: Any) -> None:
    flat = client.post(f"/v2/models/{MODEL}/infer", json=tensor_request(1)).json()
    nested = tensor_request(1)
    nested["inputs"][0]["data"] = [[[[0.25] * 28] * 28]]
    assert client.post(f"/v2/models/{MODEL}/infer", json=nested).json()["outputs"] == flat["outputs"]


def test_bytes_infer_matches_classify(client: Any) -> None:
    images = [jpeg(), png(30, 30)]
    req = {
        "inputs": [
            {
                "name": "image",
                "datatype": "BYTES",
                "shape": [2],
                "data": [base64.b64encode(i).decode() for i in images],
            }
        ]
    }
    r = client.post(f"/v2/models/{MODEL}/versions/1/infer", json=req)
    assert r.status_code == 200, r.text
    out = oip.InferenceResponse.model_validate(r.json()).outputs[0]
    assert out.shape == [2, 10]
    for i, img in enumerate(images):
        top = client.post("/v1/classify", content=img).json()["predictions"][0]["index"]
        row = out.data[i * 10 : (i + 1) * 10]
        assert max(range(10), key=lambda k: row[k]) == top


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"inputs": []},
        {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 2, 3], "data": [0.0] * 6}]},
        {"inputs": [{"name": "input", "datatype": "FP32", "shape": SHAPE, "data": [0.0] * 10}]},
        {"inputs": [{"name": "input", "datatype": "FP32", "shape": SHAPE, "data": ["x"] * 784}]},
        {"inputs": [{"name": "input", "datatype": "BF16", "shape": SHAPE, "data": [0] * 784}]},
        {"inputs": [{"name": "input", "datatype": "UINT8", "shape": SHAPE, "data": [300] * 784}]},
        {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["%%%not base64"]}]},
        {
            "inputs": [
                {
                    "name": "image",
                    "datatype": "BYTES",
                    "shape": [1],
                    "data": [base64.b64encode(b"junk").decode()],
                }
            ]
        },
        {
            "inputs": [{"name": "input", "datatype": "FP32", "shape": SHAPE, "data": [0.0] * 784}],
            "outputs": [{"name": "logits"}],
        },
        {"inputs": [{"name": "input", "datatype": "FP32", "shape": SHAPE, "data": [0.0] * 784, "bogus": 1}]},
    ],
)
def test_bad_requests_are_4xx_with_error_string(client: Any, body: dict[str, Any]) -> None:
    r = client.post(f"/v2/models/{MODEL}/infer", json=body)
    assert 400 <= r.status_code < 500, r.text
    assert oip.ErrorResponse.model_validate(r.json()).error


def test_unknown_model_or_version(client: Any) -> None:
    error(client.post("/v2/models/nope/infer", json=tensor_request()), 404)
    error(client.post(f"/v2/models/{MODEL}/versions/2/infer", json=tensor_request()), 404)
    assert (
        client.post(
            "/v2/models/x/infer", content=b"{not json", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )


def test_non_finite_outputs_are_422_not_invalid_json(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    import service.oip

    async def overflowing(*args: Any) -> Any:
        return np.full((1, 10), np.inf, np.float32)

    monkeypatch.setattr(service.oip, "run_rows", overflowing)
    r = client.post(f"/v2/models/{MODEL}/infer", json=tensor_request(1, value=3e38))
    assert "not finite" in error(r, 422)


def test_model_name_and_version_in_the_body_must_agree_with_the_path(client: Any) -> None:
    ok = client.post(f"/v2/models/{MODEL}/infer", json=tensor_request(1, model_name=MODEL, model_version="1"))
    assert ok.status_code == 200, ok.text
    assert "disagree" in error(
        client.post(f"/v2/models/{MODEL}/infer", json=tensor_request(1, model_name="x")), 400
    )
    error(client.post(f"/v2/models/{MODEL}/infer", json=tensor_request(1, model_version="7")), 404)
