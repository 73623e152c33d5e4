"""The preprocessing threads run `preprocess_nice` steps below the rest of the process, so the
engine's batch thread and the event loop take a core first (service/runtime.lower_priority)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from service.runtime import Runtime, lower_priority
from service.settings import Settings

pytestmark = pytest.mark.skipif(not hasattr(os, "setpriority"), reason="per-thread nice is Linux's")


def _own_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _in_thread(increment: int) -> int:
    out: list[int] = []

    def run() -> None:
        lower_priority(increment)
        out.append(_own_nice())

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return out[0]


def test_lowers_only_the_calling_thread() -> None:
    base = _own_nice()
    assert _in_thread(3) == min(19, base + 3)
    assert _in_thread(0) == base
    assert _in_thread(40) == 19  # clamped to the lowest priority, not an error
    assert _own_nice() == base


@pytest.mark.parametrize("nice", [0, 7])
def test_preprocessing_pool_runs_at_the_setting(tmp_path: Path, nice: int) -> None:
    base = _own_nice()
    rt = Runtime(Settings(repository=tmp_path, preprocess_threads=2, preprocess_nice=nice))
    try:
        seen = {rt.preprocess_pool.submit(_own_nice).result() for _ in range(8)}
    finally:
        rt.preprocess_pool.shutdown(wait=True)
    assert seen == {min(19, base + nice)}
    assert _own_nice() == base
