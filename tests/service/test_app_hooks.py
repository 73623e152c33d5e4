"""create_app's replaceable pieces: a `preprocess` passed in is what requests run (the service
benchmark passes a decode cache this way instead of patching a module)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .images import jpeg


def test_requests_run_the_preprocess_passed_to_create_app(repo: Path) -> None:
    from fastapi.testclient import TestClient

    from service import imaging
    from service.app import create_app
    from service.settings import Settings

    calls: list[bytes] = []

    def counting(data: bytes, spec: imaging.InputSpec, max_pixels: int) -> np.ndarray:
        calls.append(data)
        return imaging.preprocess(data, spec, max_pixels)

    body = jpeg()
    settings = Settings(repository=repo, max_batch_delay_ms=1.0, engine_threads=1, preprocess_threads=1)
    app: Any = create_app(settings, preprocess=counting)
    with TestClient(app) as client:
        r = client.post("/v1/classify", content=body, headers={"Content-Type": "image/jpeg"})
        assert r.status_code == 200, r.text
    assert calls == [body]
    assert imaging.preprocess is not counting


def test_fastapi_opentelemetry_runs_only_when_asked(repo: Path, monkeypatch: Any) -> None:
    """With a provider configured (faked here), FastAPI would instrument every request; the
    service turns that on only with opentelemetry=True (XNORNET_OPENTELEMETRY)."""
    import fastapi.telemetry._asgi as otel

    from service.app import create_app
    from service.settings import Settings

    monkeypatch.setattr(otel, "_unconfigured", lambda provider: False)
    apps: list[Any] = [create_app(Settings(repository=repo, opentelemetry=on)) for on in (False, True)]
    assert [app._native_telemetry.enabled() for app in apps] == [False, True]
    monkeypatch.setenv("XNORNET_OPENTELEMETRY", "true")
    assert Settings(repository=repo).opentelemetry
