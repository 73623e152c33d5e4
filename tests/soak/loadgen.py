"""A small asyncio HTTP/1.1 load generator for the soak and overload tests (loopback only).

Closed loop: `concurrency` workers, each on its own keep-alive connection, send requests
drawn from a weighted mix until `duration` passes. Open loop (`rate`): requests start at a
fixed rate whatever the server does, each on a free connection of a pool of `concurrency`;
an arrival with no free connection is counted as `unsent` (the offered load is then higher
than the generator could even deliver).

Run as a program it prints one JSON report (the overload test runs it in a subprocess so
that its CPU does not share a GIL with the probes the test measures):

    python -m tests.soak.loadgen --url http://127.0.0.1:PORT --rate 2000 --concurrency 256 \
        --duration 8 --image some.png
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks.httpload import Conn


@dataclass(frozen=True)
class Kind:
    """One kind of request of the mix: what is sent and which statuses it may get."""

    name: str
    endpoint: str  # the xnornet_requests_total endpoint label it counts under
    raw: bytes  # the whole request, head and body, keep-alive
    expect: frozenset[int]
    good: bool = False
    weight: float = 1.0


def post(
    path: str, body: bytes, content_type: str | None = "application/octet-stream", extra: str = ""
) -> bytes:
    ctype = f"Content-Type: {content_type}\r\n" if content_type else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{ctype}Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


@dataclass
class Result:
    kind: str
    status: int  # 0: the connection failed
    seconds: float
    retry_after: str | None
    t: float  # when it completed, seconds since the start
    error: str = ""
    version: str | None = None  # X-Model-Version of a 200


@dataclass
class Report:
    results: list[Result] = field(default_factory=list)
    unsent: int = 0
    elapsed: float = 0.0

    def statuses(self, kind: str | None = None) -> Counter[int]:
        return Counter(r.status for r in self.results if kind is None or r.kind == kind)


async def one(conn: Conn, kind: Kind, t_start: float, report: Report) -> None:
    t0 = time.perf_counter()
    try:
        status, headers, _ = await conn.request(kind.raw)
        res = Result(kind.name, status, time.perf_counter() - t0, headers.get("retry-after"), 0.0)
        res.version = headers.get("x-model-version")
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        await conn.aclose()
        res = Result(kind.name, 0, time.perf_counter() - t0, None, 0.0, repr(exc))
    res.t = time.perf_counter() - t_start
    report.results.append(res)


async def run(
    host: str,
    port: int,
    kinds: list[Kind],
    *,
    concurrency: int,
    duration: float,
    rate: float | None = None,
    seed: int = 0,
) -> Report:
    rng = random.Random(seed)
    weights = [k.weight for k in kinds]
    report = Report()
    t_start = time.perf_counter()
    end = t_start + duration
    conns = [Conn(host, port) for _ in range(concurrency)]

    def pick() -> Kind:
        return rng.choices(kinds, weights)[0]

    if rate is None:

        async def worker(conn: Conn) -> None:
            while time.perf_counter() < end:
                await one(conn, pick(), t_start, report)

        await asyncio.gather(*(worker(c) for c in conns))
    else:
        free = list(conns)
        pending: set[asyncio.Task[None]] = set()

        async def fire(conn: Conn, kind: Kind) -> None:
            try:
                await one(conn, kind, t_start, report)
            finally:
                free.append(conn)

        n = 0
        while True:
            due = t_start + n / rate
            if due >= end:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            n += 1
            if not free:
                report.unsent += 1
                continue
            task = asyncio.create_task(fire(free.pop(), pick()))
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending)
    report.elapsed = time.perf_counter() - t_start
    for c in conns:
        await c.aclose()
    return report


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100.0 * (len(s) - 1))))]


def summary(report: Report) -> dict[str, Any]:
    def lat(status: int) -> dict[str, float]:
        v = [r.seconds for r in report.results if r.status == status]
        return {
            "n": len(v),
            "p50_ms": round(percentile(v, 50) * 1e3, 2),
            "p99_ms": round(percentile(v, 99) * 1e3, 2),
            "max_ms": round(max(v, default=float("nan")) * 1e3, 2),
        }

    statuses = report.statuses()
    return {
        "elapsed_s": round(report.elapsed, 3),
        "sent": len(report.results),
        "unsent": report.unsent,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "ok_per_s": round(statuses.get(200, 0) / report.elapsed, 1) if report.elapsed else 0.0,
        "latency_200": lat(200),
        "latency_503": lat(503),
        "retry_after_on_all_503": all(r.retry_after for r in report.results if r.status == 503),
        "errors": sorted({r.error for r in report.results if r.status == 0})[:5],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.soak.loadgen", description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--path", default="/v1/classify")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=None, help="open loop: requests per second")
    args = ap.parse_args(argv)
    u = urlsplit(args.url)
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        print("loadgen: loopback only", file=sys.stderr)
        return 2
    image = Path(args.image).read_bytes()
    kinds = [Kind("good", args.path, post(args.path, image), frozenset({200, 503}), good=True)]
    report = asyncio.run(
        run(
            u.hostname or "127.0.0.1",
            u.port or 80,
            kinds,
            concurrency=args.concurrency,
            duration=args.duration,
            rate=args.rate,
        )
    )
    print(json.dumps(summary(report)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
