"""Fixtures of the service tests: a tmp repository with small models, a TestClient factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from .modelgen import write_version

TOKEN = "test-admin-token-0123456789"
MODEL = "fashion-mnist-xnor"


def pytest_configure(config: pytest.Config) -> None:
    # starlette's TestClient still uses httpx and says so on import.
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture(scope="session")
def engine_ready() -> None:
    try:
        import engine  # noqa: F401
        from engine import Model  # noqa: F401
    except ImportError as exc:  # the C module is not built
        pytest.skip(f"the C engine is not built: {exc}")


@pytest.fixture
def repo(tmp_path: Path, engine_ready: None) -> Path:
    root = tmp_path / "repo"
    write_version(root, MODEL, 1, seed=1)
    return root


@pytest.fixture
def make_client(repo: Path) -> Callable[..., Any]:
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    @contextmanager
    def make(**overrides: Any) -> Iterator[TestClient]:
        params: dict[str, Any] = {
            "repository": repo,
            "max_batch_delay_ms": 1.0,
            "engine_threads": 1,
            "preprocess_threads": 2,
            "admin_token": TOKEN,
        }
        params.update(overrides)
        app = create_app(Settings(**params))
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client

    return make


@pytest.fixture
def client(make_client: Callable[..., Any]) -> Iterator[Any]:
    with make_client() as c:
        yield c


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
