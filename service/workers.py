"""`xnornet serve --workers N`: N server processes behind one port.

The supervisor (this module, the process `xnornet serve` runs) reserves the port and starts N
workers (spawned interpreters), each listening on its own SO_REUSEPORT socket on that port: the
kernel spreads new connections over the workers by a hash of the client's address and port.
With one socket shared by all workers, whichever worker woke first accepted most of a burst of
new connections, and keep-alive clients stay where the burst put them: 32 connections were
seen split 31 to 1, one worker saturated while the other idled. The supervisor's own socket is
bound with SO_REUSEPORT but never listens: it holds the port (also one the kernel picked for
port 0) across worker restarts without taking connections. Where the platform has no
SO_REUSEPORT, the workers share the supervisor's listening socket instead. A connection still
in a worker's accept queue when that worker dies is reset.

Each worker is a whole service (app, batchers, engine threads) over its share of the CPUs.
What they share lives in a private temporary directory, made empty at start and removed at exit
(service/cluster.py): Prometheus' multiprocess files, so /metrics on any worker reports the sum
over all of them; each worker's readiness, so /readyz is 200 only when every worker is ready;
and the log of admin operations, so a load or unload that reached one worker takes effect in
all of them.

Signals to the supervisor: SIGTERM/SIGINT drain every worker (each drains as a single server
does: /readyz 503, finish in-flight and queued requests, exit 0; a second signal forces it);
SIGHUP makes every worker re-read the repository; SIGUSR1 (from a worker, after an admin
operation) makes every worker read the operations log. A worker that dies while serving is
restarted (it replays the log); one that dies before it ever started stops the whole server.
Workers are in their own process group (a terminal's Ctrl-C reaches only the supervisor, which
passes it on once) and die with the supervisor (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from .cluster import Cluster
from .settings import Settings

log = logging.getLogger("xnornet.service")

BACKLOG = 2048
RESTART_DELAY_S = 1.0


REUSE_PORT = hasattr(socket, "SO_REUSEPORT")


def bind(host: str, port: int, *, reuse_port: bool = False, listen: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _worker_main(settings: Settings, index: int, sock: socket.socket | int, root: str) -> None:
    """One worker process (spawned: a fresh interpreter). `sock`: the shared listening socket,
    or the port to listen on with a socket of its own (SO_REUSEPORT)."""
    # Until the runtime installs its handlers, these must not kill the worker (the default):
    # the operations log is read after the handler is in place, so nothing is missed.
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    os.setpgid(0, 0)
    _die_with_parent()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)s %(name)s [worker {index}]: %(message)s",
    )
    from .server import make_server

    if isinstance(sock, int):
        sock = bind(settings.host, sock, reuse_port=True)
    server = make_server(settings, cluster=Cluster(root, index, settings.workers))
    server.run(sockets=[sock])
    sys.exit(0 if server.started else 1)


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.n = settings.workers
        self.procs: dict[int, BaseProcess] = {}
        self.stopping = False
        self.port = 0  # the port bound, once bound
        self.ctx = multiprocessing.get_context("spawn")

    def _forward(self, sig: int) -> None:
        for p in self.procs.values():
            if p.pid is not None and p.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, sig)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        if sig in (signal.SIGTERM, signal.SIGINT):
            if not self.stopping:
                # Only the workers' sockets listen now, and only while they drain.
                self.sock.close()
            self.stopping = True
            self._forward(signal.SIGTERM)  # a second one forces the workers' exit
        else:
            self._forward(sig)  # SIGHUP: re-read the repository; SIGUSR1: read the operations log

    def _spawn(self, index: int) -> None:
        p = self.ctx.Process(
            target=_worker_main,
            args=(self.settings, index, self.port if REUSE_PORT else self.sock, str(self.root)),
            name=f"xnornet-worker-{index}",
        )
        p.start()
        self.procs[index] = p

    def _gone(self, index: int, p: BaseProcess) -> None:
        """Bookkeeping for a worker that exited: its live gauges and its readiness go."""
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(p.pid, str(Cluster.metrics_dir(self.root)))
        with contextlib.suppress(FileNotFoundError):
            (self.root / "ready" / str(index)).unlink()

    def run(self) -> int:
        self.root = Path(tempfile.mkdtemp(prefix="xnornet-workers-"))
        try:
            return self._run()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _run(self) -> int:
        Cluster.prepare(self.root)
        # prometheus-client picks its multiprocess mode from this variable when it is imported,
        # in each worker: set before the first one starts.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Cluster.metrics_dir(self.root))
        s = self.settings
        try:
            # With SO_REUSEPORT this socket only holds the port; the workers listen on their own.
            self.sock = bind(s.host, s.port, reuse_port=REUSE_PORT, listen=not REUSE_PORT)
        except OSError as exc:
            log.error("cannot listen on %s:%d: %s", s.host, s.port, exc)
            return 1
        port = self.port = self.sock.getsockname()[1]
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(sig, self._on_signal)
        for i in range(self.n):
            self._spawn(i)
        announced = False
        codes: list[int] = []
        ready_dir = self.root / "ready"
        while self.procs:
            multiprocessing.connection.wait([p.sentinel for p in self.procs.values()], timeout=0.2)
            for i, p in list(self.procs.items()):
                if p.exitcode is None:
                    continue
                p.join()
                started = (ready_dir / str(i)).exists()
                self._gone(i, p)
                del self.procs[i]
                if self.stopping:
                    codes.append(p.exitcode)
                elif not started:
                    log.error("worker %d exited with %s before it started: stopping", i, p.exitcode)
                    codes.append(1)
                    self.stopping = True
                    self._forward(signal.SIGTERM)
                else:
                    log.error("worker %d (pid %s) exited with %s: restarting it", i, p.pid, p.exitcode)
                    time.sleep(RESTART_DELAY_S)
                    self._spawn(i)
            if not announced and all((ready_dir / str(i)).exists() for i in range(self.n)):
                announced = True
                host = f"[{s.host}]" if ":" in s.host else s.host
                log.info(
                    "Uvicorn running on http://%s:%d with %d workers (Press CTRL+C to quit)",
                    host,
                    port,
                    self.n,
                )
        self.sock.close()  # idempotent
        return 0 if codes and all(c == 0 for c in codes) else 1


def run(settings: Settings) -> int:
    return Supervisor(settings).run()
