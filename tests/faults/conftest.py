"""Fault tests: SIGTERM under load, clients that leave, an engine that fails a batch.

End-to-end ones run a real `xnornet serve` on loopback through tests/e2e's `serve` helper
(free port, every process terminated in its `finally`); the engine-failure ones run the app
in process with a fake model (tests/service/fakes.py), since the C engine cannot be told to fail.
"""

from __future__ import annotations

import re

import pytest


@pytest.fixture(scope="session", autouse=True)
def _engine_ready() -> None:
    try:
        from engine import Model  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"the C engine is not built: {exc}")


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> {'name{labels}': value} (samples only, comments dropped)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^(\S+?(?:\{.*\})?)\s+(\S+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def metric_sum(metrics: dict[str, float], prefix: str) -> float:
    """The sum of every series whose name{labels} starts with prefix."""
    return sum(v for k, v in metrics.items() if k.startswith(prefix))
