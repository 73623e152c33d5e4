"""ASGI middleware that counts every HTTP request once: xnornet_requests_total{endpoint,model,
status}, xnornet_request_duration_seconds and xnornet_inflight_requests.

It sits outside everything else (the body limit included) so refused requests count too.
The endpoint label is the route template, found from the path here with the app's route table
(so it is the same for requests refused before routing); handlers add the model label through
scope["xnornet"].
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import Metrics
from .routes import RouteTable

UNCOUNTED = frozenset(("/metrics", "/healthz"))  # scrapes and probes would drown the signal


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, routes: RouteTable) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

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
            endpoint = self.routes.label(scope.get("path", ""))
            model = info.get("model", "")
            elapsed = time.monotonic() - info["start"]
            self.metrics.requests.labels(endpoint, model, str(status)).inc()
            self.metrics.request_duration.labels(endpoint).observe(elapsed)
            if model:
                outcome = "success" if 200 <= status < 300 else "fail"
                self.metrics.model_request.labels(model, outcome).observe(elapsed)
