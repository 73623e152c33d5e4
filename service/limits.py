"""The request body limit, enforced at the ASGI level while the body streams in.

A declared Content-Length over the limit is refused before a byte of the body is read; a
chunked upload (no Content-Length) or a lying one is cut off as soon as the running total
passes the limit. Either way the client gets 413 in the service's error shape, whatever
part of the app was reading the body (raw read, multipart parser), because this middleware
swallows the app's own reaction to the aborted stream and answers itself.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import send_json_error
from .settings import Settings

# The request line plus headers (service/http_protocol.py, uvicorn's h11 setting).
MAX_HEADER_BYTES = 16 * 1024


def connection_limit(settings: Settings) -> int:
    """Open connections (uvicorn's limit_concurrency) and concurrent RPCs (gRPC) the server
    takes: twice the queue plus room for probes and scrapes."""
    return max(256, 2 * settings.queue_capacity + 64)


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, on_reject: Any = None) -> None:
        self.app = app
        self.limit = max_body_bytes
        self.on_reject = on_reject  # called once per refused request (metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(scope, send)
            return

        seen = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
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
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        if self.on_reject is not None:
            self.on_reject(scope)
        message = f"request body exceeds the limit of {self.limit} bytes"
        path = scope.get("path", "")
        await send_json_error(send, path, 413, "too_large", message, [(b"connection", b"close")])


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
