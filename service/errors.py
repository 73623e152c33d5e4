"""The one error shape of the service, and the handlers that turn every failure into it.

/v1, /admin and everything else: {"error": {"code": "...", "message": "..."}}
/v2 (Open Inference Protocol):    {"error": "..."}

Every expected failure is an ApiError (the repository's, imaging's and the batcher's errors
are subclasses): it carries its HTTP status, a stable code, extra headers and, when the request
counts as refused, the `reason` label of xnornet_rejected_total. They are answered and counted
in one place: the handler `install` registers, or `send_error` in the ASGI middlewares that run
before the app. No stack trace ever reaches a client; unexpected exceptions are logged and
answered 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Send

log = logging.getLogger("xnornet.service")


# The code of each HTTP error status the service answers without a more specific one: Starlette's
# own errors (no route, wrong method) and the ApiError classes below that name only a status.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_type",
    422: "invalid_request",
}


class ApiError(Exception):
    """An expected failure: HTTP status, stable machine-readable code, message, extra headers,
    and `reason`, the xnornet_rejected_total label when the request counts as refused.

    A subclass names its answer as class attributes or as class keywords:
    `class NotFound(ApiError, status=404)` (code from _HTTP_CODES unless given)."""

    status = 500
    code = "internal"
    reason: str | None = None
    default_headers: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(
        cls, *, status: int | None = None, code: str | None = None, reason: str | None = None
    ) -> None:
        super().__init_subclass__()
        if status is not None:
            cls.status, cls.code = status, code or _HTTP_CODES[status]
        if reason is not None:
            cls.reason = reason

    def __init__(
        self, message: str, *, code: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.headers = dict(self.default_headers if headers is None else headers)


class BadRequest(ApiError, status=400): ...


class Unauthorized(ApiError, status=401): ...


class Forbidden(ApiError, status=403): ...


class NotFound(ApiError, status=404): ...


class PayloadTooLarge(ApiError, status=413, reason="too_large"): ...


class UnsupportedMediaType(ApiError, status=415, reason="unsupported_type"): ...


class Unprocessable(ApiError, status=422): ...


class ServiceUnavailable(ApiError, status=503, code="unavailable"): ...


class Timeout(ApiError, status=504, code="deadline_exceeded"): ...


class ClientGone(ApiError, status=499, code="client_closed_request", reason="disconnect"):
    """The client disconnected; nobody reads this answer (499 in logs and metrics)."""


def client_gone(method: str, path: str) -> ClientGone:
    """What a client that went away mid-upload (starlette's ClientDisconnect) is answered: what
    ClientGone is for a client that leaves while queued, 499, counted as a disconnect, with one
    quiet log line (not a 500 with tracebacks). Nobody reads the response."""
    log.info("client disconnected during %s %s", method, path)
    return ClientGone("the client disconnected")


def count(metrics: Any, exc: ApiError) -> None:
    """Count a refused request once, under its reason (metrics: service.metrics.Metrics or None)."""
    if exc.reason is not None and metrics is not None:
        metrics.rejected.labels(exc.reason).inc()


def error_body(path: str, code: str, message: str) -> dict[str, Any]:
    if path == "/v2" or path.startswith("/v2/"):
        return {"error": message}
    return {"error": {"code": code, "message": message}}


async def send_json_error(
    send: Send, path: str, status: int, code: str, message: str, headers: list[tuple[bytes, bytes]]
) -> None:
    """The error shape sent from pure-ASGI middleware (before FastAPI's handlers exist)."""
    body = orjson.dumps(error_body(path, code, message))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, path: str, exc: ApiError, metrics: Any) -> None:
    """Answer and count an ApiError from pure-ASGI middleware."""
    count(metrics, exc)
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
    await send_json_error(send, path, exc.status, exc.code, exc.message, headers)


def error_response(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(request.url.path, code, message), status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    def answer(request: Request, exc: ApiError) -> JSONResponse:
        runtime = getattr(request.app.state, "runtime", None)
        count(runtime.metrics if runtime is not None else None, exc)
        return error_response(request, exc.status, exc.code, exc.message, exc.headers)

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return answer(request, exc)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route for {request.method} {request.url.path}"
        return error_response(request, exc.status_code, code, message, dict(exc.headers or {}))

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        status = 400 if request.url.path.startswith("/v2") else 422
        return error_response(request, status, "invalid_request", _validation_message(exc))

    async def client_disconnect(request: Request, exc: Exception) -> JSONResponse:
        return answer(request, client_gone(request.method, request.url.path))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "internal", "internal server error")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ClientDisconnect, client_disconnect)
    app.add_exception_handler(Exception, unexpected)
