"""Load shedding before the app: an inference request for a model whose queue is full is
answered 503 (Retry-After, the service's error shape) by service/edge.py, before routing, body
reading, dependency injection and exception handling (issue 5, overload). This module says
which model a path addresses and what the refusal says.

Under overload most requests are refused; each one refused deep inside the app cost the event
loop ~0.7 ms, so refusals alone kept it saturated and /healthz waited behind them (p99 71 ms
against a 50 ms target). The same test runs again in inference.preprocess_image (and the
batcher's bounded queue), which stays the authority: this is only the cheap early exit.
"""

from __future__ import annotations

import re

_INFER = re.compile(
    r"^/v1/(?:classify|models/([^/]+)/classify)$"  # group 1: the model, or the default one
    r"|^/v2/models/([^/]+)(?:/versions/[^/]+)?/infer$"  # group 2
)


def target_model(path: str, default_model: str) -> str | None:
    """The model an inference path addresses (None: not an inference path)."""
    m = _INFER.match(path)
    if m is None:
        return None
    return m.group(1) or m.group(2) or default_model


def queue_full_message(capacity: int) -> str:
    return f"queue is full ({capacity} waiting)"
