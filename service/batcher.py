"""Dynamic batching: one bounded queue and one engine worker per served model.

A batch closes when it holds max_batch_size requests, or max_batch_delay after its first
request arrived, or when the next queued request was preprocessed for another model
version (a batch never mixes versions, so a hot reload never mixes input specs) or is another
kind of input (uint8 pixels from an image, float32 from a v2 tensor).
Requests whose deadline passed or whose client went away are dropped before compute.

`BatchQueue` is the timing logic alone, driven by explicit `now` values (tests use a fake
clock); `Batcher` runs it on the event loop and calls the engine on its own worker thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import os_threads
from .errors import ApiError

log = logging.getLogger("xnornet.batcher")


_RETRY = {"Retry-After": "1"}


def queue_full_message(capacity: int) -> str:
    return f"queue is full ({capacity} waiting)"


class QueueFull(ApiError):
    """The queue is at capacity: 503 with Retry-After."""

    status, code, reason, default_headers = 503, "queue_full", "queue_full", _RETRY


class DeadlineExceeded(ApiError):
    """The request's deadline passed while it waited; it was not computed."""

    status, code, reason = 504, "deadline_exceeded", "deadline"


class Closed(ApiError):
    """The batcher stopped before the request could run."""

    status, code, default_headers = 503, "shutting_down", _RETRY


@dataclass(eq=False)
class Item:
    """One image waiting to run. `version` is whatever the runner needs to pick the model."""

    tensor: np.ndarray
    version: Any
    enqueued: float
    deadline: float
    future: asyncio.Future[Any] | None = None
    # Applied to the item's output row on the worker thread; its result (or exception) is what
    # the future gets. Classification's softmax and top k run there, off the event loop.
    post: Callable[[np.ndarray], Any] | None = None
    cancelled: bool = False  # the client went away or gave up
    started: float = 0.0  # when its batch started to run (queue wait = started - enqueued)
    extra: dict[str, Any] = field(default_factory=dict)


class BatchQueue:
    """The queue and the rule for when a batch is due. Not thread-safe; one event loop owns it."""

    def __init__(self, max_batch_size: int, max_delay_s: float, capacity: int) -> None:
        self.max_batch_size = max_batch_size
        self.max_delay_s = max_delay_s
        self.capacity = capacity
        self._items: collections.deque[Item] = collections.deque()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Item) -> None:
        if len(self._items) >= self.capacity:
            raise QueueFull(queue_full_message(self.capacity))
        self._items.append(item)

    def expire(self, now: float) -> list[Item]:
        """Remove and return the items past their deadline, and silently drop cancelled ones."""
        expired = [it for it in self._items if not it.cancelled and it.deadline <= now]
        if expired or any(it.cancelled for it in self._items):
            self._items = collections.deque(
                it for it in self._items if not it.cancelled and it.deadline > now
            )
        return expired

    def take(self, now: float) -> tuple[list[Item], float | None]:
        """(batch, None) when a batch is due; ([], seconds to wait) when not yet; ([], None) if empty.

        Call expire(now) first so the batch holds only live items.
        """
        if not self._items:
            return [], None
        first = self._items[0]
        group = 0
        for it in self._items:
            if it.version is not first.version or group == self.max_batch_size or not _same_kind(it, first):
                break
            group += 1
        full = group == self.max_batch_size
        version_boundary = group < len(self._items)  # the next item needs another version or kind
        due_at = first.enqueued + self.max_delay_s
        if not (full or version_boundary or now >= due_at):
            return [], due_at - now
        return [self._items.popleft() for _ in range(group)], None


def _same_kind(a: Item, b: Item) -> bool:
    """Stackable into one batch: decoded images (uint8 HxWxC) and float tensors (CHW, the v2
    tensor input) of one model version are different inputs to the engine."""
    return a.tensor.dtype == b.tensor.dtype and a.tensor.shape == b.tensor.shape


RunBatch = Callable[[Any, np.ndarray], np.ndarray]


class Batcher:
    """Async face of BatchQueue. `run(version, batch) -> outputs` runs on a worker thread."""

    def __init__(
        self,
        name: str,
        run: RunBatch,
        *,
        max_batch_size: int,
        max_delay_s: float,
        capacity: int,
        clock: Callable[[], float] = time.monotonic,
        on_batch: Callable[[Sequence[Item], float], None] | None = None,
        on_depth: Callable[[int], None] | None = None,
    ) -> None:
        self.name = name
        self._run = run
        self._clock = clock
        self._queue = BatchQueue(max_batch_size, max_delay_s, capacity)
        self._wakeup = asyncio.Event()
        self._worker = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix=f"batch-{name}",
            initializer=os_threads.name_thread,
            initargs=(os_threads.BATCH,),
        )
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._on_batch = on_batch
        self._on_depth = on_depth
        self.batches = 0
        self.images = 0

    @property
    def depth(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"batcher-{self.name}")

    def submit(
        self,
        tensor: np.ndarray,
        version: Any,
        deadline: float,
        post: Callable[[np.ndarray], Any] | None = None,
    ) -> Item:
        """Queue one image; await `item.future` for its output row (or post(row)). Raises
        QueueFull or Closed."""
        if self._closing:
            raise Closed("the server is shutting down")
        item = Item(
            tensor, version, self._clock(), deadline, asyncio.get_running_loop().create_future(), post
        )
        self._queue.put(item)
        self._depth_changed()
        self._wakeup.set()
        return item

    def cancel(self, item: Item) -> None:
        """The client is gone or gave up: skip the item if it has not started yet."""
        item.cancelled = True
        if item.future is not None:
            item.future.cancel()  # nobody will read its result or exception
        self._wakeup.set()

    async def close(self) -> None:
        """Finish everything already queued, then stop the worker."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        self._worker.shutdown(wait=True)

    def _depth_changed(self) -> None:
        if self._on_depth is not None:
            self._on_depth(len(self._queue))

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = self._clock()
            for it in self._queue.expire(now):
                _fail(it, DeadlineExceeded("the request's deadline passed while it was queued"))
            batch, wait = self._queue.take(now)
            if self._closing and not batch and wait is not None:
                batch, wait = self._queue.take(float("inf"))  # shutting down: don't wait for stragglers
            self._depth_changed()
            if batch:
                await self._execute(loop, batch)
                continue
            if self._closing and not len(self._queue):
                return
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=wait)

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[Item]) -> None:
        started = self._clock()
        for it in batch:
            it.started = started
        # Everything that can fail for this batch stays inside the try: np.stack, a model
        # answering with the wrong number of rows (zip(strict=True)) or the on_batch metrics
        # hook raising out of _loop would kill the batcher task, and every request queued then
        # or later would hang until its deadline (504) while /healthz still said 200.
        try:
            out = await loop.run_in_executor(self._worker, self._compute, batch)
        except Exception as exc:  # the engine failed: every request of the batch learns why
            log.exception("batch of %d on %s failed", len(batch), self.name)
            for it in batch:
                _fail(it, exc)
            return
        elapsed = self._clock() - started
        self.batches += 1
        self.images += len(batch)
        if self._on_batch is not None:
            try:
                self._on_batch(batch, elapsed)
            except Exception:  # metrics must never cost the requests their answers
                log.exception("on_batch hook failed on %s", self.name)
        for it, row in zip(batch, out, strict=True):
            it.extra["inference_s"] = elapsed
            if it.future is not None and not it.future.done():
                if isinstance(row, _PostFailed):
                    it.extra["post_failed"] = True  # the request's own fault, not the engine's
                    it.future.set_exception(row.exc)
                else:
                    it.future.set_result(row)

    def _compute(self, batch: list[Item]) -> list[Any]:
        """On the worker thread: stack, run, and each item's post-processing."""
        out = self._run(batch[0].version, np.stack([it.tensor for it in batch]))
        if len(out) != len(batch):
            raise RuntimeError(f"the engine returned {len(out)} rows for a batch of {len(batch)}")
        return [row if it.post is None else _post(it.post, row) for it, row in zip(batch, out, strict=True)]


@dataclass
class _PostFailed:
    exc: Exception


def _post(post: Callable[[np.ndarray], Any], row: np.ndarray) -> Any:
    try:
        return post(row)
    except Exception as exc:  # that request's answer (e.g. non-finite outputs), not the batch's
        return _PostFailed(exc)


def _fail(item: Item, exc: BaseException) -> None:
    if item.future is not None and not item.future.done():
        item.future.set_exception(exc)
