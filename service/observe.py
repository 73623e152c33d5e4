"""ASGI middleware that counts every HTTP request once: xnornet_requests_total{endpoint,model,
status}, xnornet_request_duration_seconds and xnornet_inflight_requests.

It sits outside everything else (the body limit included) so refused requests count too.
The endpoint label is the route template, found from the path here (so it is the same for
requests refused before routing); handlers add the model label through scope["xnornet"].
"""

from __future__ import annotations

import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import Metrics

_SEG = r"[^/]+"
ENDPOINTS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"^{pattern.replace('{name}', _SEG).replace('{version}', _SEG)}$"), pattern)
    for pattern in (
        "/",
        "/readyz",
        "/v1/classify",
        "/v1/models/{name}/classify",
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/stats",  # before {name}: every model's statistics, as in Triton
        "/v2/models/{name}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}",
        "/v2/models/{name}/versions/{version}/ready",
        "/v2/models/{name}/versions/{version}/infer",
        "/v2/models/{name}/stats",
        "/v2/models/{name}/versions/{version}/stats",
        "/admin/models",
        "/admin/models/{name}/load",
        "/admin/models/{name}/unload",
    )
]
UNCOUNTED = frozenset(("/metrics", "/healthz"))  # scrapes and probes would drown the signal


def endpoint_label(path: str) -> str:
    for regex, label in ENDPOINTS:
        if regex.match(path):
            return label
    return "other"  # bounded cardinality whatever clients send


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in UNCOUNTED:
            await self.app(scope, receive, send)
            return
        info: dict[str, Any] = scope.setdefault("xnornet", {})
        info.setdefault("start", time.monotonic())
        status = 500  # if the app dies before answering, ServerErrorMiddleware answers 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.inflight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.inflight.dec()
            endpoint = endpoint_label(scope.get("path", ""))
            model = info.get("model", "")
            elapsed = time.monotonic() - info["start"]
            self.metrics.requests.labels(endpoint, model, str(status)).inc()
            self.metrics.request_duration.labels(endpoint).observe(elapsed)
            if model:
                outcome = "success" if 200 <= status < 300 else "fail"
                self.metrics.model_request.labels(model, outcome).observe(elapsed)
