"""Load shedding before the app: an inference request for a model whose queue is full is
answered 503 (Retry-After, the service's error shape) here, before routing, body reading,
dependency injection and exception handling.

Under overload most requests are refused; a refusal deep inside the app costs the event loop
~0.7 ms, enough for refusals alone to saturate it and delay /healthz. The same test runs again
in inference.preprocess_image (and the batcher's bounded queue), which stays the authority:
this is only the cheap early exit.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from .batcher import QueueFull, queue_full_message
from .errors import send_error
from .routes import RouteTable
from .runtime import Runtime


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, runtime: Runtime, routes: RouteTable) -> None:
        self.app = app
        self.rt = runtime
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            name = self.routes.inference_model(scope["path"], self.rt.settings.default_model)
            if name is not None and self.rt.queue_full(name):
                info: dict[str, Any] = scope.setdefault("xnornet", {})
                info["model"] = name
                refusal = QueueFull(queue_full_message(self.rt.settings.queue_capacity))
                await send_error(send, scope["path"], refusal, self.rt.metrics)
                return
        await self.app(scope, receive, send)
