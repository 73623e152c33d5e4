"""The server's threads as the OS sees them (service/os_threads.py): the preprocessing threads run
`preprocess_nice` steps below the rest of the process, so the engine's batch thread and the event
loop take a core first; the decode, batch and engine threads carry names that /proc, `top -H`
and py-spy show."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import engine
from engine import format as fmt
from service import os_threads
from service.batcher import Batcher
from service.os_threads import lower_priority, name_thread
from service.runtime import Runtime
from service.settings import Settings
from tests.engine import netgen

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice and names are Linux's")


def _own_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _own_name() -> str:
    with open(f"/proc/self/task/{threading.get_native_id()}/comm") as f:
        return f.read().strip()


def _in_thread(fn: object, *args: object) -> tuple[int, str]:
    out: list[tuple[int, str]] = []

    def run() -> None:
        fn(*args)  # type: ignore[operator]
        out.append((_own_nice(), _own_name()))

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return out[0]


def _thread_names() -> list[str]:
    names = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                names.append(f.read().strip())
        except OSError:  # a thread that ended meanwhile
            pass
    return names


def test_lowers_only_the_calling_thread() -> None:
    base = _own_nice()
    assert _in_thread(lower_priority, 3)[0] == min(19, base + 3)
    assert _in_thread(lower_priority, 0)[0] == base
    assert _in_thread(lower_priority, 40)[0] == 19  # clamped to the lowest priority, not an error
    assert _own_nice() == base


def test_names_only_the_calling_thread() -> None:
    own = _own_name()
    assert _in_thread(name_thread, "xnornet-test")[1] == "xnornet-test"
    assert _in_thread(name_thread, "a-name-longer-than-fifteen-bytes")[1] == "a-name-longer-t"
    assert _own_name() == own


@pytest.mark.parametrize("nice", [0, 7])
def test_preprocessing_pool_runs_named_at_the_setting(tmp_path: Path, nice: int) -> None:
    base = _own_nice()
    rt = Runtime(Settings(repository=tmp_path, preprocess_threads=2, preprocess_nice=nice))
    try:
        seen = {rt.preprocess_pool.submit(lambda: (_own_nice(), _own_name())).result() for _ in range(8)}
    finally:
        rt.preprocess_pool.shutdown(wait=True)
    assert seen == {(min(19, base + nice), os_threads.DECODE)}
    assert _own_nice() == base


def test_batch_thread_is_named() -> None:
    names: list[str] = []

    def run(version: object, batch: np.ndarray) -> np.ndarray:
        names.append(_own_name())
        return batch

    async def one_batch() -> None:
        b = Batcher("m", run, max_batch_size=1, max_delay_s=0.0, capacity=4)
        b.start()
        item = b.submit(np.zeros(1, np.float32), None, time.monotonic() + 5)
        await item.future  # type: ignore[misc]
        await b.close()

    asyncio.run(one_batch())
    assert names == [os_threads.BATCH]


def test_engine_workers_are_named() -> None:
    model = engine.Model.from_bytes(fmt.to_bytes(netgen.conv_net(seed=11)), threads=3)
    model.infer(np.zeros((1, 3, 19, 17), np.float32))
    assert _thread_names().count("xnornet-engine") >= 2  # its two workers (the caller is the third)
