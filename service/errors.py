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


class ApiError(Exception):
    """An expected failure: HTTP status, stable machine-readable code, message, extra headers,
    and `reason`, the xnornet_rejected_total label when the request counts as refused."""

    status = 500
    code = "internal"
    reason: str | None = None
    default_headers: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        reason: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if reason is not None:
            self.reason = reason
        self.headers = dict(self.default_headers if headers is None else headers)


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class PayloadTooLarge(ApiError):
    status, code, reason = 413, "too_large", "too_large"


class UnsupportedMediaType(ApiError):
    status, code, reason = 415, "unsupported_type", "unsupported_type"


class Unprocessable(ApiError):
    status, code = 422, "invalid_request"


class ServiceUnavailable(ApiError):
    status, code = 503, "unavailable"


class Timeout(ApiError):
    status, code = 504, "deadline_exceeded"


class ClientGone(ApiError):
    """The client disconnected; nobody reads this answer (499 in logs and metrics)."""

    status, code, reason = 499, "client_closed_request", "disconnect"


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
        # A client that goes away mid-upload is what ClientGone is for a client that leaves while
        # queued: 499, counted as a disconnect, one quiet log line (not a 500 with tracebacks).
        # Nobody reads the response.
        log.info("client disconnected during %s %s", request.method, request.url.path)
        return answer(request, ClientGone("the client disconnected"))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "internal", "internal server error")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ClientDisconnect, client_disconnect)
    app.add_exception_handler(Exception, unexpected)
