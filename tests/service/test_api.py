"""The HTTP API through TestClient (with the app's lifespan): classify, errors, limits,
health, admin, metrics."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .concurrent import classify_concurrently
from .conftest import MODEL, TOKEN, auth
from .fakes import SlowModel, slow_repo
from .images import all_modes, jpeg, png
from .modelgen import write_corrupt, write_version


def check_error(r: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert "Traceback" not in r.text
    if code:
        assert body["error"]["code"] == code, body
    return body


def test_classify_raw_body(client: Any) -> None:
    r = client.post("/v1/classify", content=jpeg(), headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"model", "predictions", "timing_ms"}
    assert (
        body["model"]["name"] == MODEL
        and body["model"]["version"] == 1
        and len(body["model"]["sha256"]) == 64
    )
    preds = body["predictions"]
    assert len(preds) == 5
    probs = [p["probability"] for p in preds]
    assert probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
    assert set(preds[0]) == {"index", "label", "probability"}
    assert set(body["timing_ms"]) == {"queue", "preprocess", "inference", "total"}
    assert r.headers["X-Model-Version"] == "1" and r.headers["content-type"] == "application/json"
    # the documented schema (the route's response_model), strictly: no coercion of types
    from service.api.classify import ClassifyResponse

    assert ClassifyResponse.model_validate_json(r.content, strict=True).model_dump() == body
    assert re.fullmatch(
        r"queue;dur=[\d.]+, preprocess;dur=[\d.]+, inference;dur=[\d.]+, total;dur=[\d.]+",
        r.headers["Server-Timing"],
    )


def test_probabilities_sum_to_one_over_all_classes(client: Any) -> None:
    r = client.post(
        "/v1/classify?top_k=10", content=png(), headers={"Content-Type": "application/octet-stream"}
    )
    assert abs(sum(p["probability"] for p in r.json()["predictions"]) - 1.0) < 1e-6
    assert sorted(p["index"] for p in r.json()["predictions"]) == list(range(10))


def test_multipart_and_named_model_agree(client: Any) -> None:
    data = jpeg()
    a = client.post("/v1/classify", files={"file": ("x.jpg", data, "image/jpeg")}).json()
    b = client.post(
        f"/v1/models/{MODEL}/classify", content=data, headers={"Content-Type": "image/jpeg"}
    ).json()
    assert a["predictions"] == b["predictions"]


@pytest.mark.parametrize("name", sorted(all_modes()))
def test_every_image_mode_classifies(client: Any, name: str) -> None:
    r = client.post("/v1/classify", content=all_modes()[name], headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("top_k", ["0", "11", "-1", "abc"])
def test_bad_top_k_is_422(client: Any, top_k: str) -> None:
    check_error(
        client.post(f"/v1/classify?top_k={top_k}", content=png(), headers={"Content-Type": "image/png"}), 422
    )


def test_client_mistakes_are_4xx_in_one_shape(client: Any) -> None:
    check_error(
        client.post("/v1/classify", content=b"not an image", headers={"Content-Type": "image/jpeg"}),
        415,
        "unsupported_type",
    )
    check_error(
        client.post("/v1/classify", content=png(), headers={"Content-Type": "text/plain"}),
        415,
        "unsupported_type",
    )
    check_error(
        client.post("/v1/classify", content=jpeg()[:3000], headers={"Content-Type": "image/jpeg"}),
        422,
        "bad_image",
    )
    check_error(
        client.post("/v1/classify", files={"other": ("x.png", png(), "image/png")}), 422, "missing_file"
    )
    check_error(client.post("/v1/models/nope/classify", content=png()), 404, "model_not_found")
    check_error(client.post("/v1/models/..%2F..%2Fetc/classify", content=png()), 404)
    check_error(client.get("/v1/nothing"), 404)
    check_error(client.get("/v1/classify"), 405)


def test_body_limit(make_client: Any) -> None:
    with make_client(max_body_bytes=4096) as client:
        big = b"\xff\xd8" + b"x" * 10_000
        check_error(
            client.post("/v1/classify", content=big, headers={"Content-Type": "image/jpeg"}), 413, "too_large"
        )

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
            for _ in range(10):
                yield b"x" * 1000

        check_error(
            client.post("/v1/classify", content=chunks(), headers={"Content-Type": "image/jpeg"}), 413
        )
        check_error(client.post("/v1/classify", files={"file": ("x.jpg", big, "image/jpeg")}), 413)
        assert (
            client.post("/v1/classify", content=png(8, 8), headers={"Content-Type": "image/png"}).status_code
            == 200
        )


def test_pixel_limit_is_413(make_client: Any) -> None:
    with make_client(max_image_pixels=1000) as client:
        check_error(
            client.post("/v1/classify", content=png(100, 100), headers={"Content-Type": "image/png"}), 413
        )


def test_health(client: Any) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["models"] == {MODEL: 1}


def test_not_ready_when_a_configured_model_is_missing(make_client: Any) -> None:
    with make_client(models=[MODEL, "absent"]) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["missing"] == ["absent"]
        assert client.get("/healthz").status_code == 200


def test_page(client: Any) -> None:
    r = client.get("/")
    assert r.status_code == 200 and 'id="file"' in r.text and "/v1/classify" in r.text


# -- admin ---------------------------------------------------------------------------------------------


def test_no_admin_api_without_token(make_client: Any) -> None:
    with make_client(admin_token=None) as client:
        check_error(client.get("/admin/models", headers=auth()), 404)
        check_error(client.post(f"/admin/models/{MODEL}/load", headers=auth()), 404)


def test_admin_auth(client: Any) -> None:
    r = client.get("/admin/models")
    check_error(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    check_error(client.get("/admin/models", headers={"Authorization": f"Basic {TOKEN}"}), 401)
    check_error(client.get("/admin/models", headers=auth("wrong-token-wrong-token")), 403, "forbidden")
    check_error(client.get("/admin/models", headers=auth(TOKEN + "x")), 403)
    assert client.get("/admin/models", headers=auth()).status_code == 200


def test_admin_load_unload_and_list(client: Any, repo: Path) -> None:
    write_version(repo, MODEL, 2, seed=2)
    r = client.post(f"/admin/models/{MODEL}/load", headers=auth())
    assert r.status_code == 200 and r.json()["loaded"]["version"] == 2
    assert client.post("/v1/classify", content=png()).headers["X-Model-Version"] == "2"
    r = client.post(f"/admin/models/{MODEL}/load", json={"version": 1}, headers=auth())
    assert r.json()["loaded"]["version"] == 1
    listing = client.get("/admin/models", headers=auth()).json()["models"]
    (m,) = listing
    assert [v["version"] for v in m["on_disk"]] == [1, 2] and m["served"]["version"] == 1 and m["pinned"] == 1
    assert m["served"]["sha256"] == m["on_disk"][0]["sha256"] and m["served"]["loaded_at"].endswith("Z")
    assert client.post(f"/admin/models/{MODEL}/unload", headers=auth()).json() == {
        "name": MODEL,
        "unloaded": 1,
    }
    check_error(client.post("/v1/classify", content=png()), 404, "model_not_found")
    check_error(client.post(f"/admin/models/{MODEL}/unload", headers=auth()), 404)
    assert client.get("/readyz").status_code == 200  # unloaded on purpose: no longer required


def test_admin_refuses_bad_input(client: Any, repo: Path) -> None:
    check_error(client.post("/admin/models/..%2Fetc/load", headers=auth()), 404)
    check_error(client.post("/admin/models/-bad/load", headers=auth()), 422, "invalid_name")
    check_error(client.post("/admin/models/absent/load", headers=auth()), 404, "model_not_found")
    check_error(client.post(f"/admin/models/{MODEL}/load", json={"version": 9}, headers=auth()), 404)
    check_error(client.post(f"/admin/models/{MODEL}/load", json={"version": "../1"}, headers=auth()), 422)
    check_error(client.post(f"/admin/models/{MODEL}/load", json={"path": "/etc/passwd"}, headers=auth()), 422)


def test_corrupt_version_rejected_old_keeps_serving(client: Any, repo: Path) -> None:
    write_corrupt(repo, MODEL, 2)
    body = check_error(client.post(f"/admin/models/{MODEL}/load", headers=auth()), 422, "model_load_failed")
    assert "version 2" in body["error"]["message"]
    r = client.post("/v1/classify", content=png())
    assert r.status_code == 200 and r.headers["X-Model-Version"] == "1"
    metrics = client.get("/metrics").text
    assert f'xnornet_model_loads_total{{model="{MODEL}",result="error"}} 1.0' in metrics
    assert "xnornet_model_info{isa=" in metrics or "xnornet_model_info{" in metrics
    listing = client.get("/admin/models", headers=auth()).json()["models"][0]
    assert "version 2" in listing["last_error"]


# -- metrics -------------------------------------------------------------------------------------------


def scrape(client: Any) -> dict[str, float]:
    out = {}
    for line in client.get("/metrics").text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def test_metrics_counts_add_up(client: Any) -> None:
    before = scrape(client)
    outcomes = {"200": 5, "415": 3, "422": 2}
    for _ in range(5):
        client.post("/v1/classify", content=png(), headers={"Content-Type": "image/png"})
    for _ in range(3):
        client.post("/v1/classify", content=b"garbage", headers={"Content-Type": "image/png"})
    for _ in range(2):
        client.post("/v1/classify", content=jpeg()[:2000], headers={"Content-Type": "image/jpeg"})
    after = scrape(client)

    def delta(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    for status, n in outcomes.items():
        assert (
            delta(f'xnornet_requests_total{{endpoint="/v1/classify",model="{MODEL}",status="{status}"}}') == n
        )
    assert delta('xnornet_rejected_total{reason="unsupported_type"}') == 3
    assert delta('xnornet_rejected_total{reason="bad_image"}') == 2
    assert delta('xnornet_request_duration_seconds_count{endpoint="/v1/classify"}') == 10
    assert delta(f'xnornet_preprocess_seconds_count{{model="{MODEL}"}}') == 5
    assert delta(f'xnornet_queue_wait_seconds_count{{model="{MODEL}"}}') == 5
    assert delta(f'xnornet_batch_size_sum{{model="{MODEL}"}}') == 5
    assert after["xnornet_inflight_requests"] == 0
    assert after[f'xnornet_queue_depth{{model="{MODEL}"}}'] == 0
    names = {k.split("{")[0] for k in after}
    for name in (
        "xnornet_inference_seconds_bucket",
        "xnornet_model_info",
        "process_cpu_seconds_total",
        "xnornet_model_loads_total",
    ):
        assert name in names


# -- batching, queue full, deadlines (a fake engine with a known speed) ---------------------------------


def slow_client(make_client: Any, tmp_path: Path, delay: float, **settings: Any) -> Any:
    model = SlowModel(delay)
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    params: dict[str, Any] = {"repository": slow_repo(tmp_path / "slow"), "max_batch_delay_ms": 20.0}
    params.update(settings)
    app = create_app(Settings(**params), loader=lambda data, src: model)
    return TestClient(app, raise_server_exceptions=False), model


def classify_refused(
    client: Any, n: int, status: int, code: str, headers: dict[str, str] | None = None
) -> list[int]:
    """The sorted statuses of `n` simultaneous classifications; every `status` answer among them
    has the one error shape with `code` and the given headers."""
    results = classify_concurrently(client, n)
    for r in results:
        if r.status_code == status:
            check_error(r, status, code)
            assert {k: r.headers.get(k) for k in headers or {}} == (headers or {}), r.headers
    return sorted(r.status_code for r in results)


def test_concurrent_requests_are_batched(make_client: Any, tmp_path: Path) -> None:
    client, model = slow_client(make_client, tmp_path, 0.05, max_batch_size=8)
    with client:
        results = classify_concurrently(client, 12)
    assert [r.status_code for r in results] == [200] * 12
    assert sum(model.batches) == 12 and max(model.batches) > 1
    assert all(r.json()["predictions"][0]["label"] == "c" for r in results)


def test_queue_full_is_503_with_retry_after(make_client: Any, tmp_path: Path) -> None:
    client, _model = slow_client(
        make_client, tmp_path, 0.3, max_batch_size=1, queue_capacity=1, max_batch_delay_ms=0.0
    )
    with client:
        codes = classify_refused(client, 5, 503, "queue_full", {"Retry-After": "1"})
        assert 200 in codes and 503 in codes and set(codes) <= {200, 503}
        assert scrape(client)['xnornet_rejected_total{reason="queue_full"}'] == codes.count(503)


def test_full_queue_is_refused_before_the_app(client: Any) -> None:
    """service/edge.py: with the queue full, an inference request gets its 503 before the
    app reads the body (a text/plain body still gets 503, not the app's 415), counted once."""
    rt = client.app.state.runtime
    cap = rt.settings.queue_capacity
    before = scrape(client)
    rt.decoding[MODEL] = cap  # as if `cap` images were being decoded
    try:
        for path in ("/v1/classify", f"/v1/models/{MODEL}/classify"):
            # text/plain would be a 415 from the app: only the early exit answers 503 here
            r = client.post(path, content=b"not an image", headers={"Content-Type": "text/plain"})
            check_error(r, 503, "queue_full")
            assert r.headers["Retry-After"] == "1"
        r = client.post(f"/v2/models/{MODEL}/infer", json={"inputs": []})
        assert r.status_code == 503 and set(r.json()) == {"error"}, r.text  # the v2 error shape
        # other models, other methods and other paths are untouched
        assert client.post("/v1/models/nope/classify", content=png()).status_code == 404
        assert client.get("/healthz").status_code == 200
    finally:
        rt.decoding[MODEL] = 0
    after = scrape(client)
    key = f'xnornet_requests_total{{endpoint="/v1/classify",model="{MODEL}",status="503"}}'
    assert after[key] - before.get(key, 0.0) == 1
    queue_full = 'xnornet_rejected_total{reason="queue_full"}'
    assert after[queue_full] - before.get(queue_full, 0.0) == 3
    r = client.post("/v1/classify", content=png(16, 16, "L"), headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text


def test_deadline_is_504_and_not_computed(make_client: Any, tmp_path: Path) -> None:
    client, model = slow_client(
        make_client, tmp_path, 0.5, max_batch_size=1, request_timeout_s=0.25, max_batch_delay_ms=0.0
    )
    with client:
        codes = classify_refused(client, 3, 504, "deadline_exceeded")
        assert codes.count(504) >= 1, codes
        assert scrape(client)['xnornet_rejected_total{reason="deadline"}'] == codes.count(504)
    # Only the request that was already running reached the engine; the expired ones never did.
    assert model.batches == [1]
