"""A server the benchmarks start as a child process and read the listening address from.

The child gets the repository on its path and none of the caller's XNORNET_* settings (a
benchmark names every setting it measures), dies with the benchmark (Linux), and its output is
kept so that a server that fails to start can be shown.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _die_with_parent() -> None:
    """In the child before exec: the kernel sends SIGTERM if the benchmark process dies."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class ChildServer:
    """Runs `cmd`; every output line goes to `log` and to `on_line`, which returns True once the
    server has said all it must (its addresses). Subclasses set their own fields before calling
    this __init__: the reader thread starts in it."""

    def __init__(self, cmd: list[str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("XNORNET_")}
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self.log: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def on_line(self, line: str) -> bool:
        raise NotImplementedError

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            # Decoded here, leniently: a byte that is not UTF-8 must not end the reading thread.
            line = raw.decode("utf-8", errors="replace")
            self.log.append(line)
            if self.on_line(line):
                self._ready.set()
        self._ready.set()  # the output ended: waiting longer cannot help

    def started(self, timeout: float) -> bool:
        """Whether the server said its addresses within `timeout` s (False: it exited or hangs)."""
        return self._ready.wait(timeout)

    def stop(self, grace: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
