"""Security defaults of the app, in process (a fake model: no engine compute needed).

- no admin token -> no admin API at all (404 on every admin route, absent from the OpenAPI
  schema); an empty token means "none", a short one is refused at start;
- errors never leak stack traces, exception text or file paths: an unexpected exception in a
  route and a failed model load are answered in the JSON error shape, nothing more;
- the transport limits are set explicitly on uvicorn (service/server.py) and the app's body limit
  holds (its 413 cases are in tests/service/test_api.py and tests/hostile).

(Auth against a configured token, wrong/short/extended tokens: tests/service/test_api.py.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.service.fakes import SlowModel, slow_repo
from tests.service.images import png

MODEL = "fashion-mnist-xnor"
TOKEN = "security-test-token-0123456789"
SECRET_DIR = "/srv/very/secret/place"


def make(tmp_path: Path, **settings: Any) -> Any:
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    model = SlowModel(0.0)
    params: dict[str, Any] = {"repository": slow_repo(tmp_path / "repo", MODEL), "max_batch_delay_ms": 1.0}
    params.update(settings)
    app = create_app(Settings(**params), loader=lambda data, src: model)
    return TestClient(app, raise_server_exceptions=False)


def assert_clean_error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    for leak in ("Traceback", 'File "', SECRET_DIR, "/work/", "site-packages", ".py"):
        assert leak not in r.text, (leak, r.text)
    return body


ADMIN_ROUTES = [
    ("GET", "/admin/models"),
    ("POST", f"/admin/models/{MODEL}/load"),
    ("POST", f"/admin/models/{MODEL}/unload"),
    ("GET", "/admin"),
]


@pytest.mark.parametrize("token", [None, ""])
def test_admin_api_absent_without_token(tmp_path: Path, token: str | None) -> None:
    with make(tmp_path, admin_token=token) as client:
        for method, path in ADMIN_ROUTES:
            for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": f"Bearer {TOKEN}"}):
                r = client.request(method, path, headers=headers)
                body = assert_clean_error(r, 404)
                assert body["error"]["code"] == "not_found"
                assert "WWW-Authenticate" not in r.headers  # nothing hints that an admin API exists
        schema = client.get("/openapi.json").json()
        assert not [p for p in schema["paths"] if p.startswith("/admin")]


def test_short_admin_token_is_refused() -> None:
    from service.settings import Settings

    with pytest.raises(ValidationError):
        Settings(admin_token="short")  # type: ignore[arg-type]
    assert Settings(admin_token="").admin_token is None  # type: ignore[arg-type]


def test_admin_token_never_echoed(tmp_path: Path) -> None:
    with make(tmp_path, admin_token=TOKEN) as client:
        r = client.get("/admin/models", headers={"Authorization": f"Bearer {TOKEN[:-1]}"})
        assert_clean_error(r, 403)
        assert TOKEN[:-1] not in r.text and TOKEN not in r.text
        assert TOKEN not in client.get("/metrics").text
        assert TOKEN not in client.get("/openapi.json").text


def test_unexpected_exception_in_a_route_is_a_bare_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.inference as inference

    def explode(*a: Any) -> Any:
        raise FileNotFoundError(2, "No such file or directory", f"{SECRET_DIR}/labels.txt")

    with make(tmp_path) as client:
        monkeypatch.setattr(inference, "topk", explode)  # a bug deep in the route
        for path in ("/v1/classify", f"/v1/models/{MODEL}/classify"):
            r = client.post(
                path + "?top_k=2", content=png(16, 16, "L"), headers={"Content-Type": "image/png"}
            )
            body = assert_clean_error(r, 500)
            assert body == {"error": {"code": "internal", "message": "internal server error"}}
            assert "FileNotFoundError" not in r.text and "labels.txt" not in r.text
        assert client.get("/healthz").status_code == 200


def test_v2_unexpected_exception_is_a_bare_500(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import service.oip as oip

    def explode(*a: Any, **k: Any) -> Any:
        raise RuntimeError(f"cannot open {SECRET_DIR}/x.xnor")

    with make(tmp_path) as client:
        monkeypatch.setattr(oip, "run_rows", explode)
        r = client.post(
            f"/v2/models/{MODEL}/infer",
            json={
                "inputs": [{"name": "input", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [0.5] * 64}]
            },
        )
        assert r.status_code == 500, r.text
        assert r.json() == {"error": "internal server error"}
        assert SECRET_DIR not in r.text and "Traceback" not in r.text


def test_failed_model_load_names_no_path(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    def bad_loader(data: bytes, src: str) -> Any:
        # The C engine loads from bytes, so its messages name no file (the reason is shown to the
        # admin who asked for the load); what must not appear is where the repository lives.
        raise ValueError("bad header")

    repo = slow_repo(tmp_path / "repo", MODEL)
    settings = Settings(repository=repo, admin_token=TOKEN)  # type: ignore[arg-type]
    app = create_app(settings, loader=bad_loader)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post(f"/admin/models/{MODEL}/load", headers={"Authorization": f"Bearer {TOKEN}"})
        assert 400 <= r.status_code < 500, r.text
        assert_clean_error(r, r.status_code)
        assert str(repo) not in r.text
        r = client.post("/v1/classify", content=png(), headers={"Content-Type": "image/png"})
        assert_clean_error(r, 404)
        assert str(repo) not in r.text


def test_uvicorn_transport_limits_are_explicit(tmp_path: Path) -> None:
    from service.server import KEEP_ALIVE_S, MAX_HEADER_BYTES, make_server
    from service.settings import Settings

    settings = Settings(repository=slow_repo(tmp_path / "repo", MODEL), port=0, queue_capacity=100)
    cfg = make_server(settings, loader=lambda data, src: SlowModel(0.0)).config
    assert cfg.h11_max_incomplete_event_size == MAX_HEADER_BYTES == 16 * 1024
    assert cfg.timeout_keep_alive == KEEP_ALIVE_S == 5
    assert cfg.limit_concurrency is not None and cfg.limit_concurrency >= 2 * settings.queue_capacity
    assert cfg.server_header is False and cfg.access_log is False
    assert settings.max_body_bytes == 8 * 1024 * 1024 and settings.max_image_pixels == 40_000_000
    assert settings.host == "127.0.0.1"  # listens on loopback unless told otherwise
