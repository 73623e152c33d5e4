"""service/api/hot.py: the edge answers well-formed classification requests without FastAPI's
routing, with the same answers as the routes; everything else still goes through the app."""

from __future__ import annotations

from typing import Any

import pytest

from service.api.deps import get_runtime

from .conftest import MODEL
from .images import jpeg, png

JPEG = {"Content-Type": "image/jpeg"}


def _routes_broken(client: Any) -> None:
    """Every request that reaches a route's dependencies fails (500): what still answers 200
    was answered by the hot path."""

    def broken() -> None:
        raise RuntimeError("the route's dependencies ran")

    client.app.dependency_overrides[get_runtime] = broken


def _same(a: Any, b: Any) -> None:
    """Two classify answers agree but for their timings."""
    assert a.status_code == b.status_code, (a.text, b.text)
    ja, jb = a.json(), b.json()
    ja.pop("timing_ms", None), jb.pop("timing_ms", None)
    assert ja == jb
    for h in ("content-type", "x-model-version", "retry-after"):
        assert a.headers.get(h) == b.headers.get(h), h


@pytest.mark.parametrize(
    "path", ["/v1/classify", "/v1/classify?top_k=3", f"/v1/models/{MODEL}/classify?top_k=10"]
)
def test_well_formed_requests_skip_the_routes(client: Any, path: str) -> None:
    _routes_broken(client)
    r = client.post(path, content=jpeg(), headers=JPEG)
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == (int(path.rsplit("=", 1)[1]) if "top_k" in path else 5)


@pytest.mark.parametrize(
    "query",
    ["top_k=3&top_k=4", "top_k=03", "top_k=+3", "top_k=3&x=1", "x=1", "top_k=100001", "top_k="],
)
def test_other_queries_go_through_the_app(client: Any, query: str) -> None:
    _routes_broken(client)
    r = client.post(f"/v1/classify?{query}", content=jpeg(), headers=JPEG)
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal"


def test_chunked_bodies_and_other_methods_go_through_the_app(client: Any) -> None:
    _routes_broken(client)
    r = client.post("/v1/classify", content=iter([jpeg()]), headers=JPEG)  # no Content-Length
    assert r.status_code == 500
    assert client.get("/v1/classify").status_code == 405  # no route matches: no dependencies run


@pytest.mark.parametrize(
    "path, body, headers",
    [
        ("/v1/classify?top_k=3", jpeg(), JPEG),
        (f"/v1/models/{MODEL}/classify", png(), {"Content-Type": "application/octet-stream"}),
        ("/v1/classify?top_k=11", png(), JPEG),  # more classes than the model has: 422
        ("/v1/classify", b"not an image", JPEG),  # 415
        ("/v1/classify", jpeg()[:3000], JPEG),  # truncated: 422
        ("/v1/classify", png(), {"Content-Type": "text/plain"}),  # 415
        ("/v1/models/nope/classify", png(), JPEG),  # 404
    ],
)
def test_the_hot_path_answers_as_the_routes_do(
    client: Any, path: str, body: bytes, headers: dict[str, str]
) -> None:
    """The same request through the hot path and, with a query parameter the hot path does not
    take (and the routes ignore), through FastAPI: the same answer, errors included."""
    hot = client.post(path, content=body, headers=headers)
    routed = client.post(path + ("&" if "?" in path else "?") + "via=app", content=body, headers=headers)
    _same(hot, routed)


def test_refusals_on_the_hot_path_are_counted_as_on_the_routes(client: Any) -> None:
    def rejected() -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith('xnornet_rejected_total{reason="unsupported_type"}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = rejected()
    client.post("/v1/classify", content=b"not an image", headers=JPEG)
    client.post("/v1/classify?via=app", content=b"not an image", headers=JPEG)
    assert rejected() == before + 2


class _NanModel:
    """A 4-class model whose outputs are NaN for any input but the warm-up's zeros."""

    isa, threads = "fake", 1

    def __init__(self) -> None:
        from .fakes import fake_info

        self.info = fake_info(8, tuple("abcd"))

    def infer(self, x: Any) -> Any:
        import numpy as np

        x = np.asarray(x)
        return np.full((len(x), 4), np.nan if x.any() else 0.0, np.float32)


@pytest.mark.parametrize("query", ["?top_k=3", "?top_k=3&via=app"])
def test_non_finite_outputs_are_one_clean_500(tmp_path: Any, query: str) -> None:
    """Top k is computed on the batch thread: a model whose outputs are not probabilities fails
    that request with bad_output, on the hot path and through the routes alike."""
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    from .fakes import slow_repo

    settings = Settings(repository=slow_repo(tmp_path), max_batch_delay_ms=1.0, preprocess_threads=1)
    with TestClient(create_app(settings, loader=lambda data, source: _NanModel())) as client:
        r = client.post("/v1/classify" + query, content=png(), headers={"Content-Type": "image/png"})
    assert r.status_code == 500 and r.json() == {
        "error": {"code": "bad_output", "message": "the model produced non-finite outputs"}
    }
