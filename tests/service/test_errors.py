"""Domain errors are answered and counted in one place (service/errors.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from service import errors
from service.batcher import Closed, DeadlineExceeded, QueueFull
from service.imaging import ImageTooLarge, UnsupportedImage
from service.repository import InvalidName, ModelNotFound, NotServed

SERVICE = Path(__file__).resolve().parents[2] / "service"


def test_only_errors_py_counts_refusals() -> None:
    """xnornet_rejected_total is incremented by errors.count alone (metrics.py only declares it)."""
    counters = []
    for path in sorted(SERVICE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "labels"
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "rejected"
            ):
                counters.append(path.relative_to(SERVICE).as_posix())
    assert sorted(set(counters)) == ["errors.py", "metrics.py"]


@pytest.mark.parametrize(
    ("exc", "status", "code", "reason", "headers"),
    [
        (QueueFull("q"), 503, "queue_full", "queue_full", {"Retry-After": "1"}),
        (Closed("c"), 503, "shutting_down", None, {"Retry-After": "1"}),
        (DeadlineExceeded("d"), 504, "deadline_exceeded", "deadline", {}),
        (UnsupportedImage("u"), 415, "unsupported_type", "unsupported_type", {}),
        (ImageTooLarge("t"), 413, "too_large", "too_large", {}),
        (InvalidName("n"), 422, "invalid_name", None, {}),
        (NotServed("s"), 404, "model_not_loaded", None, {}),
        (ModelNotFound("m"), 404, "model_not_found", None, {}),
        (errors.ClientGone("g"), 499, "client_closed_request", "disconnect", {}),
        (errors.NotFound("f"), 404, "not_found", None, {}),
        (errors.PayloadTooLarge("p"), 413, "too_large", "too_large", {}),
        (errors.ServiceUnavailable("s"), 503, "unavailable", None, {}),
        (
            errors.Unauthorized("u", headers={"WWW-Authenticate": "Bearer"}),
            401,
            "unauthorized",
            None,
            {"WWW-Authenticate": "Bearer"},
        ),
        (errors.Unprocessable("x", code="missing_file"), 422, "missing_file", None, {}),
    ],
)
def test_domain_errors_carry_their_answer(
    exc: errors.ApiError, status: int, code: str, reason: str | None, headers: dict[str, str]
) -> None:
    assert isinstance(exc, errors.ApiError)
    assert (exc.status, exc.code, exc.reason, exc.headers) == (status, code, reason, headers)


def test_default_headers_are_not_shared() -> None:
    a = QueueFull("a")
    a.headers["X"] = "y"
    assert QueueFull("b").headers == {"Retry-After": "1"}
