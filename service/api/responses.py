"""The error responses each route declares in the OpenAPI schema, in the service's two error
shapes (service/errors.py), so the schema says what clients (and the fuzzer) may receive."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    """/v1, /admin and everything outside /v2."""

    error: ErrorDetail


class V2ErrorResponse(BaseModel):
    """/v2 (the Open Inference Protocol's shape)."""

    error: str


DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing or malformed credentials",
    403: "Wrong credentials",
    404: "Unknown model, version or route",
    413: "Body or image over the limits",
    415: "Not a content type or image format the service decodes",
    422: "Invalid request or undecodable image",
    499: "The client disconnected",
    503: "Queue full or shutting down (Retry-After)",
    504: "Not computed within the request timeout",
}

# What any inference request may answer besides success (middleware included: body limit, load
# shedding).
INFERENCE = (404, 413, 415, 422, 499, 503, 504)


def errors(*statuses: int, v2: bool = False) -> dict[int | str, dict[str, Any]]:
    model = V2ErrorResponse if v2 else ErrorResponse
    return {s: {"model": model, "description": DESCRIPTIONS[s]} for s in statuses}
