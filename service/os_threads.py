"""What the operating system knows of the server's threads: their names and their priority.

Python 3.11 names only its own Thread objects; `top -H`, py-spy and /proc/<pid>/task/*/comm
show every thread as the process. The server names its threads in the OS as well, so each
one's CPU can be told apart: xnornet-decode (preprocessing pool), xnornet-batch (one per
model: runs the engine and the post-processing), xnornet-engine (the engine library's own
workers); the event loop is the main thread.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading

log = logging.getLogger("xnornet.service")

DECODE = "xnornet-decode"
BATCH = "xnornet-batch"
_PR_SET_NAME = 15  # <linux/prctl.h>
_NAME_BYTES = 15  # the kernel keeps 15 bytes and a NUL


def name_thread(name: str) -> None:
    """Name the calling thread in the OS (Linux; elsewhere nothing happens). A failure only
    leaves the inherited name."""
    if sys.platform != "linux":
        return
    try:
        ctypes.CDLL(None).prctl(_PR_SET_NAME, name.encode()[:_NAME_BYTES], 0, 0, 0)
    except (OSError, AttributeError) as exc:
        log.debug("thread keeps its OS name: %s", exc)


def lower_priority(increment: int) -> None:
    """Run the calling thread `increment` nice steps below its current priority (Linux: a
    thread's id is a PRIO_PROCESS target). Lowering needs no privilege; where it fails anyway
    the thread keeps its priority, which only costs throughput."""
    if increment <= 0 or not hasattr(os, "setpriority"):
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + increment))
    except OSError as exc:
        log.warning("preprocessing thread keeps its priority: %s", exc)


def start_decode_thread(nice: int) -> None:
    """The preprocessing pool's initializer."""
    name_thread(DECODE)
    lower_priority(nice)
