"""Dependencies shared by the routers, as Annotated aliases."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import Depends, Request

from engine.version import __version__

from ..runtime import Runtime

VERSION = __version__


async def get_runtime(request: Request) -> Runtime:
    # async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread
    # round trip per request for one attribute read (8.7% of the event loop's samples, py-spy).
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def request_info(request: Request) -> dict[str, Any]:
    """The per-request dict the metrics middleware reads (model label, start time)."""
    info: dict[str, Any] = request.scope.setdefault("xnornet", {})
    info.setdefault("start", time.monotonic())
    return info


def tag_model(request: Request, model: str) -> None:
    request_info(request)["model"] = model


def started(request: Request) -> float:
    """When the request arrived (time.monotonic), for deadlines and total time."""
    start: float = request_info(request)["start"]
    return start
