"""Closed-loop HTTP load on a running server, and the same work done in-process (the ceiling).

The HTTP client is a few lines of asyncio over keep-alive connections rather than a full
HTTP library, so that on a small machine the load generator takes as little CPU as possible
from the server it measures. The mean batch size comes from the server's own metrics
(xnornet_batch_size_sum / _count, before and after). `direct` times decode + preprocess +
engine in a loop in this process: the ceiling the service's overhead is measured against.

CPU accounting (the machine may be shared, so wall-clock throughput depends on what else runs):
`client_cpu_ms_per_request` is this process's CPU time per answered request; with `server_pid`
(Linux /proc) `server_cpu_ms_per_request` is the server's, both over the measured window only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q / 100.0 * (len(sorted_values) - 1))))
    return sorted_values[k]


# -- HTTP load --------------------------------------------------------------------------------------
# A server closes a keep-alive connection that stays idle (uvicorn: service.server.KEEP_ALIVE_S,
# 5 s); a request written just as it does is lost without a status (EOF on the response). Like
# any client pool, Conn therefore replaces a connection idle longer than this before using it.
IDLE_S = 2.0


class Conn:
    """One keep-alive HTTP/1.1 connection (the soak tests' load generator uses it too)."""

    def __init__(self, host: str, port: int, idle_s: float = IDLE_S) -> None:
        self.host, self.port = host, port
        self.idle_s = idle_s
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_used = 0.0

    async def request(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send one raw request; (status, lower-cased headers, body)."""
        now = time.monotonic()
        if self.writer is not None and now - self.last_used > self.idle_s:
            self.close()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.last_used = now
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            if key:
                headers[key.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        self.last_used = time.monotonic()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def aclose(self) -> None:
        """close() and wait until the socket is closed."""
        writer = self.writer
        self.close()
        if writer is not None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                await writer.wait_closed()


async def get_text(host: str, port: int, path: str) -> str:
    """GET `path` on its own connection; the body as text."""
    conn = Conn(host, port)
    try:
        _, _, body = await conn.request(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        )
    finally:
        conn.close()
    return body.decode()


def batch_totals(metrics_text: str) -> tuple[float, float]:
    total = count = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("xnornet_batch_size_sum"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith("xnornet_batch_size_count"):
            count += float(line.rsplit(" ", 1)[1])
    return total, count


def process_cpu_s(pid: int) -> float | None:
    """utime + stime of a process and its live descendants, all their threads (Linux /proc;
    None elsewhere): a `--workers N` supervisor's number includes its workers'."""
    own = _cpu_s(pid)
    if own is None:
        return None
    return own + sum(_cpu_s(child) or 0.0 for child in _descendants(pid))


def thread_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds of every thread of a process and its live descendants, summed by the thread's
    OS name (/proc/.../comm: the server names its decode, batch and engine threads); each
    process's main thread (the server's event loop) counts as "main"."""
    out: dict[str, float] = {}
    for p in [pid, *_descendants(pid)]:
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            stat = _stat(f"/proc/{p}/task/{tid}/stat")
            if stat is not None:
                name = "main" if int(tid) == p else stat[0]
                out[name] = out.get(name, 0.0) + stat[1]
    return out


def _cpu_s(pid: int) -> float | None:
    stat = _stat(f"/proc/{pid}/stat")
    return None if stat is None else stat[1]


def _stat(path: str) -> tuple[str, float] | None:
    """(name, utime + stime in seconds) from a /proc stat file; None once the task is gone."""
    try:
        with open(path) as f:
            text = f.read()
        name, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 1 :]
        fields = rest.split()
        return name, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except (OSError, ValueError):
                continue
            out += kids
            todo += kids
    return out


@dataclass(frozen=True)
class Load:
    """One closed-loop measurement, whichever client makes it: `concurrency` connections with
    one request in flight each POST `image` to url + path for `warmup` then `duration` seconds;
    `server_pid` (Linux /proc) adds the server's CPU time per request."""

    url: str
    path: str
    image: bytes
    concurrency: int
    duration: float
    warmup: float
    server_pid: int | None = None

    @property
    def host_port(self) -> tuple[str, int]:
        u = urlsplit(self.url)
        return u.hostname or "127.0.0.1", u.port or 80


class ServerWindow:
    """The server's side of the measured window: its batch counters (from /metrics) and its CPU
    time, read on entering and on leaving."""

    def __init__(self, load: Load) -> None:
        self._load = load
        self.batches = (0.0, 0.0)  # (sum of batch sizes, batches) over the window
        self.cpu_s: float | None = None
        self.thread_cpu_s: dict[str, float] = {}  # by thread name (thread_cpu_s)

    async def _totals(self) -> tuple[float, float]:
        return batch_totals(await get_text(*self._load.host_port, "/metrics"))

    def _cpu(self) -> float | None:
        pid = self._load.server_pid
        return process_cpu_s(pid) if pid else None

    async def __aenter__(self) -> ServerWindow:
        self._before = await self._totals()
        self._cpu0 = self._cpu()
        self._threads0 = self._threads()
        return self

    def _threads(self) -> dict[str, float]:
        pid = self._load.server_pid
        return thread_cpu_s(pid) if pid else {}

    async def __aexit__(self, *exc: object) -> None:
        cpu1 = self._cpu()
        threads1 = self._threads()
        self.thread_cpu_s = {k: v - self._threads0.get(k, 0.0) for k, v in threads1.items()}
        after = await self._totals()
        self.batches = (after[0] - self._before[0], after[1] - self._before[1])
        if self._cpu0 is not None and cpu1 is not None:
            self.cpu_s = cpu1 - self._cpu0


def report(
    load: Load,
    generator: str,
    server: ServerWindow,
    *,
    elapsed: float,
    requests: int,
    ok: int,
    errors: int,
    statuses: dict[str, int],
    latency_ms: dict[str, float | None],
    client_cpu_s: float,
) -> dict[str, Any]:
    """The fields every load generator reports; latency_ms holds p50_ms, p90_ms, p99_ms, mean_ms."""
    size_sum, batches = server.batches
    return {
        "url": load.url + load.path,
        "generator": generator,
        "concurrency": load.concurrency,
        "duration_s": round(elapsed, 3),
        "requests": requests,
        "requests_per_s": round(ok / elapsed, 1) if elapsed > 0 else 0.0,
        "errors": errors,
        "statuses": statuses,
        **latency_ms,
        "mean_batch_size": round(size_sum / batches, 2) if batches else None,
        "client_cpu_ms_per_request": round(client_cpu_s / ok * 1e3, 3) if ok else None,
        "server_cpu_ms_per_request": (
            round(server.cpu_s / ok * 1e3, 3) if ok and server.cpu_s is not None else None
        ),
        "server_cpu_ms_per_request_by_thread": {
            name: round(s / ok * 1e3, 3)
            for name, s in sorted(server.thread_cpu_s.items(), key=lambda kv: -kv[1])
            if ok and s > 0
        },
    }


async def load(spec: Load) -> dict[str, Any]:
    host, port = spec.host_port
    raw = (
        f"POST {spec.path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {len(spec.image)}\r\n\r\n"
    ).encode() + spec.image
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    measuring = False
    stop = False

    async def worker() -> None:
        conn = Conn(host, port)
        while not stop:
            t0 = time.perf_counter()
            try:
                status, _, _ = await conn.request(raw)
                key = str(status)
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                conn.close()
                key = type(exc).__name__
            if measuring:
                latencies.append(time.perf_counter() - t0)
                statuses[key] += 1
        conn.close()

    tasks = [asyncio.create_task(worker()) for _ in range(spec.concurrency)]
    await asyncio.sleep(spec.warmup)
    async with ServerWindow(spec) as server:
        client_cpu0 = time.process_time()
        measuring = True
        t_start = time.perf_counter()
        await asyncio.sleep(spec.duration)
        measuring = False
        elapsed = time.perf_counter() - t_start
        client_cpu = time.process_time() - client_cpu0
    stop = True
    await asyncio.gather(*tasks)
    lat = sorted(latencies)
    n = len(lat)
    ok = statuses.get("200", 0)
    latency_ms = {f"p{q}_ms": round(percentile(lat, q) * 1e3, 2) for q in (50, 90, 99)}
    return report(
        spec,
        "httpload",
        server,
        elapsed=elapsed,
        requests=n,
        ok=ok,
        errors=n - ok,
        statuses=dict(statuses),
        latency_ms={**latency_ms, "mean_ms": round(statistics.fmean(lat) * 1e3, 2) if lat else None},
        client_cpu_s=client_cpu,
    )


# -- the in-process ceiling --------------------------------------------------------------------------
def direct(model_file: Path, image: bytes, duration: float, threads: int) -> dict[str, Any]:
    import numpy as np

    import engine
    from service.imaging import preprocess
    from service.settings import Settings

    model = engine.Model.load(model_file, threads=threads)
    spec = model.info.input
    limit = Settings().max_image_pixels
    model.infer(preprocess(image, spec, limit)[None])  # warm-up
    latencies = []
    cpu0 = time.process_time()
    t_start = time.perf_counter()
    while time.perf_counter() - t_start < duration:
        t0 = time.perf_counter()
        np.asarray(model.infer(preprocess(image, spec, limit)[None]))
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - t_start
    cpu = time.process_time() - cpu0
    lat = sorted(latencies)
    return {
        "mode": "direct",
        "model": str(model_file),
        "isa": model.isa,
        "threads": model.threads,
        "duration_s": round(elapsed, 3),
        "requests": len(lat),
        "requests_per_s": round(len(lat) / elapsed, 1),
        "errors": 0,
        "p50_ms": round(percentile(lat, 50) * 1e3, 3),
        "p90_ms": round(percentile(lat, 90) * 1e3, 3),
        "p99_ms": round(percentile(lat, 99) * 1e3, 3),
        "cpu_ms_per_request": round(cpu / len(lat) * 1e3, 3) if lat else None,
    }
