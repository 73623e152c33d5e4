"""What the worker processes of one `xnornet serve --workers N` share: a private directory.

    <dir>/metrics/         prometheus-client's multiprocess files (PROMETHEUS_MULTIPROC_DIR)
    <dir>/ready/<index>    each worker's readiness: "ready" or "not ready"; absent until the
                           worker has started (and again after it died: the supervisor removes it)
    <dir>/ops.jsonl        the admin operations (load, unload) in the order they took effect
    <dir>/ops.lock         flock'ed while an operation is applied and appended

An admin call reaches one worker (the kernel picks who accepts the connection). That worker
takes the lock, first applies every operation in the log it has not applied yet, then its own,
appends it and signals the supervisor (SIGUSR1), which signals every worker; each applies the
operations after the last one it applied, in log order. Every worker thus applies the same
operations in the same order, whatever the timing of the calls and the signals (signals may
coalesce: a worker reads everything new on each). A worker started later (a restart) replays
the whole log after its initial loads.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any, BinaryIO

READY, NOT_READY = "ready", "not ready"


class Cluster:
    """One worker's handle on the shared directory."""

    def __init__(self, root: Path | str, index: int, workers: int) -> None:
        self.root = Path(root)
        self.index = index
        self.workers = workers
        self.ready_dir = self.root / "ready"
        self.ops_path = self.root / "ops.jsonl"
        self.lock_path = self.root / "ops.lock"

    @staticmethod
    def prepare(root: Path) -> None:
        """The supervisor, before any worker starts."""
        (root / "metrics").mkdir(parents=True, exist_ok=True)
        (root / "ready").mkdir(exist_ok=True)
        (root / "ops.jsonl").touch()
        (root / "ops.lock").touch()

    @staticmethod
    def metrics_dir(root: Path | str) -> Path:
        return Path(root) / "metrics"

    # -- readiness -------------------------------------------------------------------------
    def publish(self, ready: bool) -> None:
        """This worker's readiness, replaced atomically (readers never see a partial file)."""
        path = self.ready_dir / str(self.index)
        tmp = path.with_name(f".{self.index}.tmp")
        tmp.write_text(READY if ready else NOT_READY)
        os.replace(tmp, path)

    def states(self) -> dict[int, str | None]:
        """Every worker's published state (None: not started, or dead)."""
        out: dict[int, str | None] = {}
        for i in range(self.workers):
            try:
                out[i] = (self.ready_dir / str(i)).read_text()
            except OSError:
                out[i] = None
        return out

    def all_ready(self) -> bool:
        return all(s == READY for s in self.states().values())

    # -- the operations log ----------------------------------------------------------------
    def lock_file(self) -> BinaryIO:
        """The file whose flock makes admin operations one at a time across the workers
        (closing it releases the lock)."""
        return open(self.lock_path, "rb")

    def read_ops(self) -> list[dict[str, Any]]:
        """Every operation so far, in order. Appends are whole lines written under the lock in
        one write; a line without its newline is one being written, read on the next signal."""
        data = self.ops_path.read_bytes()
        ops = []
        for line in data.split(b"\n")[:-1]:
            if line:
                ops.append(json.loads(line))
        return ops

    def append(self, op: dict[str, Any]) -> int:
        """Append an operation (call with the lock held); its sequence number."""
        seq = len(self.read_ops()) + 1
        line = json.dumps({**op, "seq": seq}).encode() + b"\n"
        fd = os.open(self.ops_path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        return seq

    def notify(self) -> None:
        """Ask the supervisor to make every worker read the log."""
        os.kill(os.getppid(), signal.SIGUSR1)
