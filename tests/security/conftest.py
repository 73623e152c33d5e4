"""Security defaults: static checks of the source, the app in process with a fake
model, and path confinement over the wire against a real `xnornet serve` on loopback."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def engine_ready() -> None:
    try:
        from engine import Model  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"the C engine is not built: {exc}")
