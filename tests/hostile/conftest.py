"""The hostile-upload suite runs against a real `xnornet serve` process (tests/e2e's `serve`)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _engine_ready() -> None:
    try:
        from engine import Model  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"the C engine is not built: {exc}")
