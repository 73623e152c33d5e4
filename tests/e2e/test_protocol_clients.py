"""The real Triton client (tritonclient, HTTP and gRPC) with its defaults against a real
`xnornet serve` process on loopback, serving the bundled model: metadata, FP32 inference in JSON
and in binary, an encoded JPEG as a BYTES tensor, classification, statistics and errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from service.settings import BUNDLED_MODELS
from tests.service.images import jpeg

from .conftest import MODEL, Server, serve

tc_http = pytest.importorskip("tritonclient.http", reason="tritonclient[http] is not installed")
tc_grpc = pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed")
from tritonclient.utils import InferenceServerException  # noqa: E402

PROTOCOLS = ("http", "grpc")
SHAPE = (1, 28, 28)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with serve(BUNDLED_MODELS, "--grpc-port", "0", "--model", MODEL) as srv:
        yield srv


def client(server: Server, protocol: str) -> Any:
    if protocol == "http":
        return tc_http.InferenceServerClient(server.url.removeprefix("http://"))
    return tc_grpc.InferenceServerClient(server.grpc_address)


def module(protocol: str) -> Any:
    return tc_http if protocol == "http" else tc_grpc


def as_json(protocol: str) -> dict[str, Any]:
    return {} if protocol == "http" else {"as_json": True}


def reference(x: np.ndarray) -> np.ndarray:
    """The engine's own output for x, without the service."""
    import engine

    model = engine.Model.load(BUNDLED_MODELS / MODEL / "1" / "model.xnor", threads=1)
    return np.asarray(model.infer(x), dtype=np.float32)


def batch(n: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, *SHAPE)).astype(np.float32)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_health_and_metadata(server: Server, protocol: str) -> None:
    c = client(server, protocol)
    assert c.is_server_live() and c.is_server_ready()
    assert c.is_model_ready(MODEL) and c.is_model_ready(MODEL, "1")
    assert not c.is_model_ready(MODEL, "7")
    meta = c.get_server_metadata(**as_json(protocol))
    assert meta["name"] == "xnornet"
    assert {"binary_tensor_data", "classification", "statistics"} <= set(meta["extensions"])
    model = c.get_model_metadata(MODEL, **as_json(protocol))
    assert model["name"] == MODEL and model["versions"] == ["1"]
    (inp,) = model["inputs"]
    assert inp["datatype"] == "FP32" and [int(d) for d in inp["shape"]] == [-1, *SHAPE]
    assert [int(d) for d in model["outputs"][0]["shape"]] == [-1, 10]


@pytest.mark.parametrize(
    ("protocol", "binary"),
    [("http", True), ("http", False), ("grpc", True)],
    ids=["http", "http-json", "grpc"],
)
def test_fp32_infer_matches_the_engine(server: Server, protocol: str, binary: bool) -> None:
    m, x = module(protocol), batch()
    inp = m.InferInput("input", list(x.shape), "FP32")
    out = m.InferRequestedOutput("output")
    if protocol == "http":
        inp.set_data_from_numpy(x, binary_data=binary)
        out = m.InferRequestedOutput("output", binary_data=binary)
    else:
        inp.set_data_from_numpy(x)
    result = client(server, protocol).infer(MODEL, [inp], outputs=[out], request_id="r1")
    y = result.as_numpy("output")
    assert y.dtype == np.float32 and y.shape == (3, 10)
    np.testing.assert_allclose(y, reference(x), rtol=1e-6, atol=1e-6)
    assert result.get_response(**as_json(protocol))["id"] == "r1"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_defaults_without_requested_outputs(server: Server, protocol: str) -> None:
    m, x = module(protocol), batch(1)
    inp = m.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    y = client(server, protocol).infer(MODEL, [inp]).as_numpy("output")
    np.testing.assert_allclose(y, reference(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_jpeg_bytes_tensor_and_classification_agree_with_classify(server: Server, protocol: str) -> None:
    m = module(protocol)
    images = [jpeg(640, 480), jpeg(200, 300, quality=70)]
    inp = m.InferInput("image", [len(images)], "BYTES")
    inp.set_data_from_numpy(np.array(images, dtype=np.object_))
    outs = [m.InferRequestedOutput("output", class_count=3)]
    c = client(server, protocol)
    top = c.infer(MODEL, [inp], outputs=outs).as_numpy("output")
    assert top.shape == (2, 3)
    logits = c.infer(MODEL, [inp], outputs=[m.InferRequestedOutput("output")]).as_numpy("output")
    for i, data in enumerate(images):
        v1 = httpx.post(
            f"{server.url}/v1/models/{MODEL}/classify?top_k=3",
            content=data,
            headers={"Content-Type": "image/jpeg"},
            timeout=30,
        ).json()["predictions"]
        parsed = [s.decode().split(":", 2) for s in top[i]]
        assert [(int(idx), label) for _, idx, label in parsed] == [(p["index"], p["label"]) for p in v1]
        for (score, _, _), p in zip(parsed, v1, strict=True):
            assert float(score) == pytest.approx(p["probability"], abs=1e-6)
        z = np.exp(logits[i].astype(np.float64) - logits[i].max())
        assert int(np.argmax(z)) == v1[0]["index"]
        assert z.max() / z.sum() == pytest.approx(v1[0]["probability"], abs=1e-6)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_statistics_count_inferences(server: Server, protocol: str) -> None:
    m, c, x = module(protocol), client(server, protocol), batch(2)

    def stats() -> dict[str, Any]:
        (s,) = c.get_inference_statistics(MODEL, **as_json(protocol))["model_stats"]
        return s

    before = stats()
    inp = m.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    c.infer(MODEL, [inp])
    after = stats()
    assert after["name"] == MODEL and after["version"] == "1"
    # gRPC's JSON form writes uint64 as strings
    count = {k: int(after[k]) - int(before.get(k, 0)) for k in ("inference_count", "execution_count")}
    assert count["inference_count"] == 2 and 1 <= count["execution_count"] <= 2
    succ = after["inference_stats"]["success"]
    assert int(succ["count"]) >= 1 and int(succ["ns"]) > 0
    assert int(after["last_inference"]) > 0
    every = c.get_inference_statistics(**as_json(protocol))["model_stats"]
    assert [s["name"] for s in every] == [MODEL]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_errors(server: Server, protocol: str) -> None:
    m, c = module(protocol), client(server, protocol)
    x = batch(1)
    inp = m.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    with pytest.raises(InferenceServerException) as e:
        c.infer("nope", [inp])
    assert e.value.status() in ("404", "StatusCode.NOT_FOUND")
    bad = m.InferInput("input", [1, 2, 3], "FP32")
    bad.set_data_from_numpy(np.zeros((1, 2, 3), np.float32))
    with pytest.raises(InferenceServerException) as e:
        c.infer(MODEL, [bad])
    assert e.value.status() in ("400", "StatusCode.INVALID_ARGUMENT")
    assert "shape" in e.value.message()
    junk = m.InferInput("image", [1], "BYTES")
    junk.set_data_from_numpy(np.array([b"not an image"], dtype=np.object_))
    with pytest.raises(InferenceServerException) as e:
        c.infer(MODEL, [junk])
    assert e.value.status() in ("415", "StatusCode.INVALID_ARGUMENT")
    with pytest.raises(InferenceServerException) as e:
        c.get_model_metadata("nope")
    assert e.value.status() in ("404", "StatusCode.NOT_FOUND")


def test_grpc_drains_on_sigterm() -> None:
    """SIGTERM: gRPC readiness turns false at once while RPCs are still served (drain delay),
    then the process exits 0 and the port refuses calls (UNAVAILABLE)."""
    import signal
    import time

    with serve(BUNDLED_MODELS, "--grpc-port", "0", "--model", MODEL, "--drain-delay-s", "3") as srv:
        c = tc_grpc.InferenceServerClient(srv.grpc_address)
        assert c.is_server_ready()
        srv.signal(signal.SIGTERM)
        deadline = time.monotonic() + 2
        while c.is_server_ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not c.is_server_ready() and not c.is_model_ready(MODEL)
        x = batch(1)
        inp = tc_grpc.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x)
        assert c.infer(MODEL, [inp]).as_numpy("output").shape == (1, 10)  # still served
        assert srv.proc.wait(30) == 0
        with pytest.raises(InferenceServerException) as e:
            c.is_server_live()
        assert e.value.status() == "StatusCode.UNAVAILABLE"


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("datatype", ["INT32", "UINT8"])
def test_integer_tensors_are_converted_to_fp32(server: Server, protocol: str, datatype: str) -> None:
    m = module(protocol)
    x = np.random.default_rng(1).integers(0, 4, (2, *SHAPE)).astype(datatype.lower())
    inp = m.InferInput("input", list(x.shape), datatype)
    inp.set_data_from_numpy(x)
    y = client(server, protocol).infer(MODEL, [inp]).as_numpy("output")
    np.testing.assert_allclose(y, reference(x.astype(np.float32)), rtol=1e-6, atol=1e-6)


def test_http_json_bytes_are_base64_images(server: Server) -> None:
    """Without binary data, JSON carries BYTES as strings: an image goes base64-encoded."""
    import base64

    data = jpeg(200, 300, quality=70)
    inp = tc_http.InferInput("image", [1], "BYTES")
    inp.set_data_from_numpy(np.array([base64.b64encode(data)], dtype=np.object_), binary_data=False)
    out = tc_http.InferRequestedOutput("output", binary_data=False, class_count=1)
    (top,) = client(server, "http").infer(MODEL, [inp], outputs=[out]).as_numpy("output")
    v1 = httpx.post(
        f"{server.url}/v1/models/{MODEL}/classify?top_k=1",
        content=data,
        headers={"Content-Type": "image/jpeg"},
        timeout=30,
    ).json()["predictions"][0]
    assert isinstance(top[0], str)  # JSON strings, not bytes, from the client's JSON decoding
    assert top[0].split(":", 2)[1:] == [str(v1["index"]), v1["label"]]
