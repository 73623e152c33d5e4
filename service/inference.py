"""One image's way through the service after its bytes are read, shared by /v1 and /v2:
lease the served version -> preprocess in the thread pool -> queue -> result row.

Every refusal is raised as an ApiError (service.errors answers and counts it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.requests import Request

from .batcher import Closed, DeadlineExceeded, Item, QueueFull, queue_full_message
from .errors import ApiError, ClientGone
from .postprocess import topk
from .repository import Lease
from .runtime import Runtime


@dataclass
class Timing:
    preprocess: float = 0.0
    queue: float = 0.0
    inference: float = 0.0


async def preprocess_image(rt: Runtime, lease: Lease, data: bytes, timing: Timing) -> np.ndarray:
    # Admission control. The batch queue is bounded, but an image is decoded before it reaches
    # it, in a thread pool whose own queue is not: without this test, under overload every
    # request would wait behind hundreds of decodes only to be refused by the full queue. So
    # refuse up front, without decoding, when the images being decoded plus those queued for
    # this model already fill the capacity. service/edge.py makes the same test before
    # the app runs, the cheap early exit.
    name = lease.version.name
    if rt.queue_full(name):
        raise QueueFull(queue_full_message(rt.settings.queue_capacity))
    rt.decoding[name] = rt.decoding.get(name, 0) + 1
    t0 = time.perf_counter()
    loop = asyncio.get_running_loop()
    try:
        x = await loop.run_in_executor(
            rt.preprocess_pool, rt.preprocess, data, lease.version.spec, rt.settings.max_image_pixels
        )
    finally:
        rt.decoding[name] -= 1
    timing.preprocess = time.perf_counter() - t0
    rt.metrics.child(rt.metrics.preprocess, lease.version.name).observe(timing.preprocess)
    return x


async def run_rows(
    rt: Runtime,
    lease: Lease,
    rows: list[np.ndarray],
    deadline: float,
    request: Request | None,
    timing: Timing,
    post: Callable[[np.ndarray], Any] | None = None,
) -> list[Any]:
    """Queue each row (one image) and wait for all of them, the deadline, or the client leaving
    (an HTTP `request` disconnecting; without one, gRPC, the RPC's task is cancelled instead).
    Each row's output, or post(output) computed on the batch's worker thread."""
    batcher = rt.batcher(lease.version.name)
    items: list[Item] = []
    try:
        for x in rows:
            items.append(batcher.submit(x, lease.version, deadline, post))
    except (QueueFull, Closed):
        for it in items:
            batcher.cancel(it)
        raise

    futures = [it.future for it in items if it.future is not None]
    # One image (every /v1 request) waits on its own future: no gather() around it.
    gathered: asyncio.Future[Any] = futures[0] if len(futures) == 1 else asyncio.gather(*futures)
    # When the client leaves, the items' futures are cancelled below and gather() then ends with
    # a CancelledError nobody reads; marking it read keeps asyncio from logging "_GatheringFuture
    # exception was never retrieved" for every disconnect while queued.
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
                result = gathered.result()  # raises DeadlineExceeded, post's error or an engine error
                out = result if len(futures) > 1 else [result]
            except ApiError:  # DeadlineExceeded, or post's answer for this request (BadOutput)
                raise
            except Exception:
                if any(it.extra.get("post_failed") for it in items):
                    raise  # a fault of the post-processing: answered as any unexpected error
                # The engine failed this batch (the batcher logged the traceback once): a clean
                # 500 with a stable code, never the exception's text (it may name files), and no
                # second traceback from the catch-all handler.
                raise ApiError("inference failed; the request may be retried", code="engine_error") from None
        elif gone in done:
            raise ClientGone("the client disconnected")
        else:
            raise DeadlineExceeded("the request timed out")
    except DeadlineExceeded:
        raise DeadlineExceeded(
            f"not computed within the request timeout of {rt.settings.request_timeout_s:g} s"
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
    return list(out)


async def classify_row(
    rt: Runtime, lease: Lease, x: np.ndarray, deadline: float, request: Request | None, timing: Timing, k: int
) -> list[tuple[int, float]]:
    """run_rows for one image, answered with its top k classes (postprocess.topk)."""
    kind = lease.version.output_kind
    (best,) = await run_rows(rt, lease, [x], deadline, request, timing, lambda row: topk(row, kind, k))
    result: list[tuple[int, float]] = best
    return result


def _consume(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


async def _disconnected(request: Request) -> None:
    """Returns when the client goes away (the body has been read, so only that is left)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
