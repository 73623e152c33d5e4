"""A real `xnornet serve` process on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "e2e-admin-token-0123456789"
MODEL = "fashion-mnist-xnor"


@pytest.fixture(scope="session", autouse=True)
def _engine_ready() -> None:
    try:
        from engine import Model  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"the C engine is not built: {exc}")


class Server:
    def __init__(self, proc: subprocess.Popen[str], url: str, log: list[str]) -> None:
        self.proc = proc
        self.url = url
        self.log = log

    def output(self) -> str:
        return "".join(self.log)

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the HTTP server listens on."""
        u = urlsplit(self.url)
        assert u.hostname and u.port, self.url
        return u.hostname, u.port

    @property
    def grpc_address(self) -> str:
        """host:port of the gRPC service (started with --grpc-port; logged before HTTP's line)."""
        m = re.search(r"gRPC server listening on (127\.0\.0\.1:\d+)", self.output())
        assert m, "the server runs no gRPC service:\n" + self.output()
        return m.group(1)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)


def flags(**settings: object) -> list[str]:
    """The `xnornet serve` flags of these Settings fields: max_body_bytes=N gives --max-body-bytes N."""
    return [part for key, value in settings.items() for part in ("--" + key.replace("_", "-"), str(value))]


@contextmanager
def serve(
    repo: Path, *args: str, env: dict[str, str] | None = None, startup_s: float = 60.0
) -> Iterator[Server]:
    """Start the server with --port 0 and read the port it got from its log (no port race)."""
    cmd = [
        sys.executable,
        "-m",
        "xnornet",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--repository",
        str(repo),
        "--engine-threads",
        "1",
        "--log-level",
        "info",
        *args,
    ]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("XNORNET_")}
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env
    )
    log: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.append(line)
            m = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
            if m and not found.is_set():
                url.append(m.group(1))
                found.set()
        found.set()

    threading.Thread(target=reader, daemon=True).start()
    try:
        deadline = time.monotonic() + startup_s
        while not found.wait(0.1):
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start:\n" + "".join(log))
        if not url:
            raise RuntimeError(f"server exited with {proc.poll()}:\n" + "".join(log))
        yield Server(proc, url[0], log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture
def server_factory() -> Callable[..., Any]:
    return serve
