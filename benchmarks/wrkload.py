"""Closed-loop HTTP load from wrk (a C load generator), with httpload.load's report.

On a machine of a few cores the load generator shares the CPUs with the server it measures,
so the cheaper it is per request, the less it takes from the server: wrk (event loop in C,
one thread here) costs a fraction of httpload's asyncio client per request. `load` runs it as
a child process, `concurrency` keep-alive connections with one request in flight each (the
same closed loop as httpload.load), POSTing the same body over and over, and returns the same
fields: requests/s, p50/p90/p99 latency, errors, the mean batch size (from the server's
metrics) and CPU time per answered request of the server (`server_pid`, Linux /proc) and of
wrk itself (its rusage as a finished child).

wrk counts a response as an error when its status is not 2xx/3xx or the connection fails or
times out; the timeout is set far beyond any latency the benchmark expects, so a slow
configuration is measured rather than cut off. Latency percentiles are wrk's (its histogram has
microsecond resolution). wrk is a system package (Debian: `apt-get install wrk`); `available()`
says whether it is on PATH.
"""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from . import httpload

# The request and the summary: wrk's Lua hooks. The body is read from a file next to the script.
_SCRIPT = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
local f = assert(io.open([==[{body}]==], "rb"))
wrk.body = f:read("*a")
f:close()

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""
TIMEOUT_S = 120  # per request: far beyond any latency measured here


def available() -> bool:
    return shutil.which("wrk") is not None


def _run(script: Path, url: str, concurrency: int, duration: float) -> dict[str, Any]:
    """One wrk run; its summary (the JSON line `done` writes) and its CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [
            "wrk",
            "--threads",
            "1",
            "--connections",
            str(concurrency),
            "--duration",
            f"{max(1, round(duration))}s",
            "--timeout",
            f"{TIMEOUT_S}s",
            "--script",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=duration + TIMEOUT_S + 30,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        said = proc.stderr.strip() or proc.stdout.strip()
        raise RuntimeError(f"wrk failed (exit {proc.returncode}): {said}")
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith('{"requests"')), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{proc.stdout}")
    summary: dict[str, Any] = json.loads(line)
    summary["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return summary


async def load(spec: httpload.Load) -> dict[str, Any]:
    """httpload.load's measurement with wrk as the client (durations in whole seconds, >= 1)."""
    with tempfile.TemporaryDirectory(prefix="xnornet-wrk-") as tmp:
        body = Path(tmp) / "body"
        body.write_bytes(spec.image)
        script = Path(tmp) / "post.lua"
        script.write_text(_SCRIPT.format(body=body))
        target = spec.url + spec.path
        if spec.warmup > 0:
            await asyncio.to_thread(_run, script, target, spec.concurrency, spec.warmup)
        async with httpload.ServerWindow(spec) as server:
            s = await asyncio.to_thread(_run, script, target, spec.concurrency, spec.duration)
    n = int(s["requests"])
    errors = int(s["status"] + s["connect"] + s["read"] + s["write"] + s["timeout"])
    return httpload.report(
        spec,
        "wrk",
        server,
        elapsed=s["duration_us"] / 1e6,
        requests=n,
        ok=max(0, n - int(s["status"])),
        errors=errors,
        statuses={"non_2xx": int(s["status"]), "socket_errors": errors - int(s["status"])},
        latency_ms={f"{k}_ms": round(s[f"{k}_us"] / 1e3, 2) for k in ("p50", "p90", "p99", "mean")},
        client_cpu_s=s["cpu_s"],
    )
