"""The service's errors as gRPC status codes: the one place this protocol's mapping lives."""

from __future__ import annotations

import grpc

from ..errors import ApiError

_BY_HTTP_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.INVALID_ARGUMENT,  # an image over the pixel limit: this request's fault
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    499: grpc.StatusCode.CANCELLED,
    503: grpc.StatusCode.UNAVAILABLE,  # shutting down
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def status_code(exc: ApiError) -> grpc.StatusCode:
    if exc.code == "queue_full":  # the client may retry later: RESOURCE_EXHAUSTED, not UNAVAILABLE
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    return _BY_HTTP_STATUS.get(exc.status, grpc.StatusCode.INTERNAL)
