"""One image's way through the service after its bytes are read, shared by /v1 and /v2:
lease the served version -> preprocess in the thread pool -> queue -> result row.

Every refusal is raised as an ApiError and counted in xnornet_rejected_total here, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.requests import Request

from .admission import queue_full_message
from .batcher import Closed, DeadlineExceeded, Item, QueueFull
from .errors import ApiError, NotFound, ServiceUnavailable, Timeout
from .imaging import ImageError
from .repository import Lease, NotServed, RepositoryError, check_name
from .runtime import Runtime


class ClientGone(ApiError):
    """The client disconnected; nobody reads this answer (499 in logs and metrics)."""

    status, code = 499, "client_closed_request"


@dataclass
class Timing:
    preprocess: float = 0.0
    queue: float = 0.0
    inference: float = 0.0


def lease_model(rt: Runtime, name: str) -> Lease:
    try:
        check_name(name)
        return rt.repo.acquire(name)
    except NotServed:
        on_disk = name in rt.repo.names_on_disk()
        raise NotFound(
            f"model {name!r} is {'not loaded' if on_disk else 'unknown'}", code="model_not_found"
        ) from None
    except RepositoryError as exc:
        raise NotFound(str(exc), code="model_not_found") from None


async def preprocess_image(rt: Runtime, lease: Lease, data: bytes, timing: Timing) -> np.ndarray:
    # Admission control (issue 5's overload test). The batch queue is bounded, but an image is
    # decoded before it reaches it, in a thread pool whose own queue is not: under overload every
    # request waited behind hundreds of decodes only to be refused by the full queue (503s took
    # 0.3-0.6 s, and the waiting bodies piled up in memory). So refuse up front, without decoding,
    # when the images being decoded plus those queued for this model already fill the capacity.
    # service/admission.py makes the same test before the app runs, the cheap early exit.
    name = lease.version.name
    if rt.queue_full(name):
        rt.metrics.rejected.labels("queue_full").inc()
        raise ServiceUnavailable(
            queue_full_message(rt.settings.queue_capacity),
            code="queue_full",
            headers={"Retry-After": "1"},
        )
    rt.decoding[name] = rt.decoding.get(name, 0) + 1
    t0 = time.perf_counter()
    loop = asyncio.get_running_loop()
    try:
        x = await loop.run_in_executor(
            rt.preprocess_pool, rt.preprocess, data, lease.version.spec, rt.settings.max_image_pixels
        )
    except ImageError as exc:
        rt.metrics.rejected.labels(exc.reason).inc()
        raise ApiError(str(exc), status=exc.status, code=exc.code) from None
    finally:
        rt.decoding[name] -= 1
    timing.preprocess = time.perf_counter() - t0
    rt.metrics.preprocess.labels(lease.version.name).observe(timing.preprocess)
    return x


async def run_rows(
    rt: Runtime,
    lease: Lease,
    rows: list[np.ndarray],
    deadline: float,
    request: Request | None,
    timing: Timing,
) -> np.ndarray:
    """Queue each row (one image) and wait for all of them, the deadline, or the client leaving
    (an HTTP `request` disconnecting; without one, gRPC, the RPC's task is cancelled instead)."""
    batcher = rt.batcher(lease.version.name)
    items: list[Item] = []
    try:
        for x in rows:
            items.append(batcher.submit(x, lease.version, deadline))
    except QueueFull as exc:
        for it in items:
            batcher.cancel(it)
        rt.metrics.rejected.labels("queue_full").inc()
        raise ServiceUnavailable(str(exc), code="queue_full", headers={"Retry-After": "1"}) from None
    except Closed as exc:
        raise ServiceUnavailable(str(exc), code="shutting_down", headers={"Retry-After": "1"}) from None

    futures = [it.future for it in items if it.future is not None]
    # One image (every /v1 request) waits on its own future: no gather() around it.
    gathered: asyncio.Future[Any] = futures[0] if len(futures) == 1 else asyncio.gather(*futures)
    # When the client leaves, the items' futures are cancelled below and gather() then ends with
    # a CancelledError nobody reads: asyncio logged "_GatheringFuture exception was never
    # retrieved" for every disconnect while queued (issue 5, faults). Mark it read.
    gathered.add_done_callback(_consume)
    gone: asyncio.Future[None] = (
        asyncio.ensure_future(_disconnected(request))
        if request is not None
        else asyncio.get_running_loop().create_future()
    )
    waiting: set[asyncio.Future[Any]] = {gathered, gone}
    try:
        done, _ = await asyncio.wait(
            waiting,
            timeout=max(0.0, deadline - time.monotonic()),
            return_when=asyncio.FIRST_COMPLETED,
        )
        if gathered in done:
            try:
                result = gathered.result()  # raises DeadlineExceeded or an engine error
                out = result if len(futures) > 1 else [result]
            except DeadlineExceeded:
                raise
            except Exception:
                # Issue 5 (faults): the engine failed this batch (the batcher logged the traceback
                # once). A clean 500 with a stable code, never the exception's text (it may name
                # files); before, it went to the catch-all handler, which logged it a second time
                # and let ServerErrorMiddleware re-raise it into uvicorn's log (a third time).
                raise ApiError("inference failed; the request may be retried", code="engine_error") from None
        elif gone in done:
            rt.metrics.rejected.labels("disconnect").inc()
            raise ClientGone("the client disconnected")
        else:
            raise DeadlineExceeded()
    except DeadlineExceeded:
        rt.metrics.rejected.labels("deadline").inc()
        raise Timeout(
            f"not computed within the request timeout of {rt.settings.request_timeout_s:g} s",
            code="deadline_exceeded",
        ) from None
    finally:
        gone.cancel()
        for it in items:
            if it.future is not None and not it.future.done():
                batcher.cancel(it)
        if not gathered.done():
            gathered.cancel()
        with contextlib.suppress(BaseException):
            await gone
    first = items[0]
    timing.queue = max(0.0, first.started - first.enqueued)
    timing.inference = float(first.extra.get("inference_s", 0.0))
    return np.stack(out)


def softmax(row: np.ndarray) -> np.ndarray:
    z = row.astype(np.float64)
    z = np.exp(z - z.max())
    return z / z.sum()


def probabilities(row: np.ndarray, output_kind: str) -> np.ndarray:
    """One output row as class probabilities (float64): normalized when the model outputs
    probabilities, the softmax of its logits otherwise."""
    if output_kind == "probabilities":
        probs = np.clip(row.astype(np.float64), 0.0, None)
        total = probs.sum()
        return probs / total if total > 0 else softmax(row)
    return softmax(row)


def _consume(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


async def _disconnected(request: Request) -> None:
    """Returns when the client goes away (the body has been read, so only that is left)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
