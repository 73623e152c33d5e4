"""The limits on a request's size: its head (MAX_HEADER_BYTES) and its body.

The body limit is enforced at the ASGI level by service/edge.py: a declared Content-Length over
the limit is refused before a byte of the body is read; a chunked upload (no Content-Length)
is cut off as soon as the running total passes the limit. Either way the client gets 413 in the
service's error shape, whatever part of the app was reading the body (raw read, multipart
parser), because the middleware swallows the app's own reaction to the aborted stream and
answers itself.
"""

from __future__ import annotations

from starlette.types import Scope

from .settings import Settings

# The request line plus headers (service/http_protocol.py, uvicorn's h11 setting).
MAX_HEADER_BYTES = 16 * 1024


def connection_limit(settings: Settings) -> int:
    """Open connections (uvicorn's limit_concurrency) and concurrent RPCs (gRPC) the server
    takes: twice the queue plus room for probes and scrapes."""
    return max(256, 2 * settings.queue_capacity + 64)


class BodyTooLarge(Exception):
    pass


def declared_length(scope: Scope) -> tuple[int | None, bool]:
    """(the Content-Length, None if absent or unreadable; whether a Transfer-Encoding is set)."""
    length: int | None = None
    chunked = False
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                length = int(value)
            except ValueError:
                chunked = True  # unreadable: count the body as it streams in
        elif key == b"transfer-encoding":
            chunked = True
    return length, chunked
