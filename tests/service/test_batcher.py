"""The batcher: timing rules with a fake clock, ordering, deadlines, capacity, versions."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import numpy as np
import pytest

from service.batcher import Batcher, BatchQueue, DeadlineExceeded, Item, QueueFull

V1, V2 = object(), object()
T = TypeVar("T")


def item(t: float, version: object = V1, deadline: float = 1e9, tag: int = 0) -> Item:
    return Item(np.full((1,), tag, np.float32), version, enqueued=t, deadline=deadline)


def test_waits_for_the_delay_then_flushes() -> None:
    q = BatchQueue(max_batch_size=4, max_delay_s=0.010, capacity=100)
    assert q.take(0.0) == ([], None)
    q.put(item(1.000))
    batch, wait = q.take(1.004)
    assert batch == [] and wait == pytest.approx(0.006)
    q.put(item(1.005))
    batch, wait = q.take(1.009)
    assert batch == [] and wait == pytest.approx(0.001)  # the delay counts from the FIRST request
    batch, wait = q.take(1.010)
    assert len(batch) == 2 and wait is None and len(q) == 0


def test_full_batch_goes_at_once_in_order() -> None:
    q = BatchQueue(max_batch_size=3, max_delay_s=10.0, capacity=100)
    for i in range(7):
        q.put(item(0.0, tag=i))
    batches = []
    while len(q):
        batch, _ = q.take(0.0 if len(q) >= 3 else 10.0)
        batches.append([int(it.tensor[0]) for it in batch])
    assert batches == [[0, 1, 2], [3, 4, 5], [6]]


def test_zero_delay_means_no_waiting() -> None:
    q = BatchQueue(max_batch_size=8, max_delay_s=0.0, capacity=100)
    q.put(item(5.0))
    assert len(q.take(5.0)[0]) == 1


def test_batches_never_mix_versions() -> None:
    q = BatchQueue(max_batch_size=8, max_delay_s=10.0, capacity=100)
    q.put(item(0.0, V1, tag=0))
    q.put(item(0.0, V1, tag=1))
    q.put(item(0.0, V2, tag=2))
    batch, _ = q.take(0.0)  # the V1 group cannot grow any more: it goes now
    assert [it.version for it in batch] == [V1, V1]
    batch, wait = q.take(0.0)
    assert batch == [] and wait == pytest.approx(10.0)
    assert [it.version for it in q.take(10.0)[0]] == [V2]


def test_batches_never_mix_input_kinds() -> None:
    """uint8 image pixels (HxWxC) and v2 float tensors (CHW) of one version are separate batches."""
    q = BatchQueue(max_batch_size=8, max_delay_s=10.0, capacity=100)
    pixels = [Item(np.zeros((4, 4, 3), np.uint8), V1, enqueued=0.0, deadline=1e9) for _ in range(2)]
    tensor = Item(np.zeros((3, 4, 4), np.float32), V1, enqueued=0.0, deadline=1e9)
    for it in (pixels[0], pixels[1], tensor):
        q.put(it)
    batch, _ = q.take(0.0)
    assert batch == pixels and np.stack([it.tensor for it in batch]).dtype == np.uint8
    assert q.take(10.0)[0] == [tensor]


def test_queue_full() -> None:
    q = BatchQueue(max_batch_size=2, max_delay_s=0.0, capacity=3)
    for _ in range(3):
        q.put(item(0.0))
    with pytest.raises(QueueFull):
        q.put(item(0.0))


def test_deadlines_expire_and_cancelled_are_dropped() -> None:
    q = BatchQueue(max_batch_size=8, max_delay_s=1.0, capacity=100)
    a, b, c = item(0.0, deadline=0.5, tag=1), item(0.0, deadline=5.0, tag=2), item(0.0, deadline=5.0, tag=3)
    for it in (a, b, c):
        q.put(it)
    c.cancelled = True
    assert q.expire(0.4) == [] and len(q) == 2  # c dropped silently
    assert q.expire(0.5) == [a]
    assert [int(it.tensor[0]) for it in q.take(1.0)[0]] == [2]


# -- the async face, with a fake engine ------------------------------------------------------------


class FakeEngine:
    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[int] = []
        self.delay = delay
        self.threads: set[str] = set()

    def __call__(self, version: object, x: np.ndarray) -> np.ndarray:
        self.calls.append(len(x))
        self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)
        return x * 2


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def test_batcher_groups_concurrent_requests_and_returns_rows_in_order() -> None:
    eng = FakeEngine()

    async def main() -> list[float]:
        b = Batcher("m", eng, max_batch_size=4, max_delay_s=0.05, capacity=100)
        b.start()
        items = [b.submit(np.full((2,), i, np.float32), V1, time.monotonic() + 5) for i in range(10)]
        out = await asyncio.gather(*(it.future for it in items if it.future))
        await b.close()
        return [float(r[0]) for r in out]

    assert run(main()) == [2.0 * i for i in range(10)]
    assert eng.calls == [4, 4, 2]
    assert all(name.startswith("batch-m") for name in eng.threads)  # never on the event loop


def test_post_processing_runs_on_the_worker_and_fails_only_its_own_request() -> None:
    eng = FakeEngine()
    threads: set[str] = set()

    def post(row: np.ndarray) -> float:
        threads.add(threading.current_thread().name)
        if row[0] == 2.0:
            raise ValueError("this request's outputs are unusable")
        return float(row[0]) + 0.5

    async def main() -> list[Any]:
        b = Batcher("m", eng, max_batch_size=4, max_delay_s=0.05, capacity=100)
        b.start()
        items = [b.submit(np.full((2,), i, np.float32), V1, time.monotonic() + 5, post) for i in range(3)]
        plain = b.submit(np.full((2,), 3, np.float32), V1, time.monotonic() + 5)
        futures = [it.future for it in [*items, plain] if it.future]
        out = await asyncio.gather(*futures, return_exceptions=True)
        await b.close()
        return out

    first, failed, third, plain = run(main())
    assert (first, third) == (0.5, 4.5) and isinstance(failed, ValueError)
    assert isinstance(plain, np.ndarray) and plain.tolist() == [6.0, 6.0]  # no post: the row
    assert eng.calls == [4] and all(name.startswith("batch-m") for name in threads)


def test_deadline_passed_in_queue_is_not_computed() -> None:
    eng = FakeEngine(delay=0.2)

    async def main() -> tuple[object, object]:
        b = Batcher("m", eng, max_batch_size=1, max_delay_s=0.0, capacity=100)
        b.start()
        first = b.submit(np.zeros(1, np.float32), V1, time.monotonic() + 5)
        await asyncio.sleep(0.01)  # the first is running (0.2 s)
        late = b.submit(np.ones(1, np.float32), V1, time.monotonic() + 0.05)
        results = await asyncio.gather(first.future, late.future, return_exceptions=True)  # type: ignore[arg-type]
        await b.close()
        return results[0], results[1]

    _ok, late = run(main())
    assert isinstance(late, DeadlineExceeded)
    assert eng.calls == [1]  # the late one never reached the engine


def test_cancelled_request_is_skipped() -> None:
    eng = FakeEngine(delay=0.1)

    async def main() -> None:
        b = Batcher("m", eng, max_batch_size=1, max_delay_s=0.0, capacity=100)
        b.start()
        first = b.submit(np.zeros(1, np.float32), V1, time.monotonic() + 5)
        await asyncio.sleep(0.01)
        gone = b.submit(np.ones(1, np.float32), V1, time.monotonic() + 5)
        b.cancel(gone)  # the client disconnected while queued
        await first.future  # type: ignore[misc]
        await b.close()

    run(main())
    assert eng.calls == [1]


def test_close_finishes_queued_work() -> None:
    eng = FakeEngine(delay=0.02)

    async def main() -> int:
        b = Batcher("m", eng, max_batch_size=2, max_delay_s=1.0, capacity=100)
        b.start()
        items = [b.submit(np.zeros(1, np.float32), V1, time.monotonic() + 5) for _ in range(5)]
        await b.close()  # does not wait the 1 s batch delay, and computes everything
        return sum(1 for it in items if it.future and it.future.done() and not it.future.exception())

    t0 = time.monotonic()
    assert run(main()) == 5
    assert time.monotonic() - t0 < 0.9


def test_engine_error_fails_the_batch_only() -> None:
    calls = []

    def flaky(version: object, x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return x

    async def main() -> list[object]:
        b = Batcher("m", flaky, max_batch_size=1, max_delay_s=0.0, capacity=10)
        b.start()
        a = b.submit(np.zeros(1, np.float32), V1, time.monotonic() + 5)
        c = b.submit(np.zeros(1, np.float32), V1, time.monotonic() + 5)
        out = await asyncio.gather(a.future, c.future, return_exceptions=True)  # type: ignore[arg-type]
        await b.close()
        return list(out)

    first, second = run(main())
    assert isinstance(first, RuntimeError) and isinstance(second, np.ndarray)
