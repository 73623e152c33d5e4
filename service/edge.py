"""The one ASGI middleware in front of the app: it counts, sheds and limits every HTTP request.

In order, for each request:
1. metrics (service/observe.py): xnornet_requests_total{endpoint,model,status},
   xnornet_request_duration_seconds, xnornet_inflight_requests and, for requests that name a
   model, the per-model success/failure durations, for every request but the scrapes and
   probes (observe.UNCOUNTED), refused ones included;
2. admission: an inference request (a route marked runs_inference, service/routes.py) for a
   model whose queue is full is answered 503 here, before routing, body reading, dependency
   injection and exception handling. A refusal deep inside the app costs the event loop
   ~0.7 ms, enough for refusals alone to saturate it under overload and delay /healthz; the
   same test runs again in inference.preprocess_image (and the batcher's bounded queue), which
   stays the authority: this is only the cheap early exit;
3. the body limit (service/limits.py): a declared Content-Length over the limit is refused at
   once; a body without one is counted while it streams in and cut off past the limit;
4. the hot path (service/api/hot.py): a well-formed classification request with a declared
   length is answered by the classify function itself, without FastAPI's routing.

One layer does all four with a single wrapped `send` and no wrapped `receive` where the
declared length already bounds the body, which is the common case: each request costs the
event loop that much less than three stacked middlewares would. Refusals are answered and
counted by service/errors.send_error.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .api import hot
from .batcher import QueueFull, queue_full_message
from .errors import PayloadTooLarge, send_error
from .limits import BodyTooLarge, declared_length
from .observe import UNCOUNTED
from .routes import RouteTable
from .runtime import Runtime


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, runtime: Runtime, routes: RouteTable) -> None:
        self.app = app
        self.rt = runtime
        self.routes = routes
        self.metrics = runtime.metrics
        self.limit = runtime.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in UNCOUNTED:
            await self._limited(scope, receive, send)
            return
        info: dict[str, Any] = scope.setdefault("xnornet", {})
        start = info.setdefault("start", time.monotonic())
        status = 500  # if the app dies before answering, ServerErrorMiddleware answers 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        m = self.metrics
        m.inflight.inc()
        try:
            if scope["method"] == "POST" and self._shed(scope, path, info):
                refusal = QueueFull(queue_full_message(self.rt.settings.queue_capacity))
                await send_error(send_status, path, refusal, m)
            else:
                await self._limited(scope, receive, send_status)
        finally:
            m.inflight.dec()
            endpoint = self.routes.label(path)
            model = info.get("model", "")
            elapsed = time.monotonic() - start
            m.child(m.requests, endpoint, model, str(status)).inc()
            m.child(m.request_duration, endpoint).observe(elapsed)
            if model:
                m.child(m.model_request, model, "success" if 200 <= status < 300 else "fail").observe(elapsed)

    def _shed(self, scope: Scope, path: str, info: dict[str, Any]) -> bool:
        """Admission: True when this is an inference request for a model whose queue is full
        (inference.preprocess_image and the batcher's bounded queue stay the authority)."""
        name = self.routes.inference_model(path, self.rt.settings.default_model)
        if name is None or not self.rt.queue_full(name):
            return False
        info["model"] = name
        return True

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app behind the body limit."""
        declared, chunked = declared_length(scope)
        if declared is not None and declared > self.limit:
            await self._too_large(scope, send)
            return
        if declared is not None and not chunked:
            # The HTTP parser delivers exactly the declared length as this request's body
            # (anything after it is the next request), so that length bounds it already.
            if not await hot.answer(scope, receive, send, self.rt, self.routes):
                await self.app(scope, receive, send)
            return

        limit = self.limit
        seen = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the app's answer to the aborted read is replaced by our 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            pass
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await self._too_large(scope, send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        refusal = PayloadTooLarge(
            f"request body exceeds the limit of {self.limit} bytes", headers={"connection": "close"}
        )
        await send_error(send, scope["path"], refusal, self.metrics)
