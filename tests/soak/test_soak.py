"""Soak: concurrency 64 for a fixed time, mixing good images, hostile inputs and a hot
reload every few seconds that alternates good and corrupt versions.

Checked: zero failed good requests (every one 200, naming a good version), every hostile
request its documented status, the response counts per (endpoint, status) equal the deltas of
xnornet_requests_total, resident memory flat after warm-up (RSS_GROWTH_MIB), and no file
descriptor growth (FD_SLACK). CI runs SOAK_SECONDS (default 25 s); a long run is

    XNORNET_SOAK_SECONDS=600 python -m pytest -s tests/soak/test_soak.py
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from pathlib import Path

from tests.e2e.conftest import MODEL, TOKEN, flags, serve
from tests.hostile import payloads as p
from tests.hostile.procfs import MiB, fd_count, rss_bytes
from tests.service.images import jpeg, png
from tests.service.modelgen import write_version

from . import loadgen as lg
from .common import requests_total, scrape
from .corrupt import CORRUPTIONS, write_corrupt_version

SOAK_SECONDS = float(os.environ.get("XNORNET_SOAK_SECONDS", "25"))
CONCURRENCY = 64
RELOAD_EVERY_S = 3.0
MAX_BODY = 256 * 1024
# After warm-up (the first WARMUP_FRACTION of the run), RSS may wander at most this far above
# its level at the end of warm-up; the mean of the last samples may exceed the first by FLAT_MIB.
WARMUP_FRACTION = 0.3
RSS_GROWTH_MIB = 48
FLAT_MIB = 16
FD_SLACK = 2
CLASSIFY = "/v1/classify"
NAMED = "/v1/models/{name}/classify"
LOAD = "/admin/models/{name}/load"


def kinds() -> list[lg.Kind]:
    ok = frozenset({200})
    return [
        lg.Kind("good_png", CLASSIFY, lg.post(CLASSIFY, png(64, 48), "image/png"), ok, True, 6),
        lg.Kind("good_jpeg", CLASSIFY, lg.post(CLASSIFY, jpeg(320, 240), "image/jpeg"), ok, True, 2),
        lg.Kind(
            "good_named_top3",
            NAMED,
            lg.post(f"/v1/models/{MODEL}/classify?top_k=3", png(32, 32), None),
            ok,
            True,
            1,
        ),
        lg.Kind("text", CLASSIFY, lg.post(CLASSIFY, b"hello", "text/plain"), frozenset({415}), weight=0.4),
        lg.Kind("garbage", CLASSIFY, lg.post(CLASSIFY, p.html(), "image/png"), frozenset({415}), weight=0.4),
        lg.Kind(
            "truncated",
            CLASSIFY,
            lg.post(CLASSIFY, p.truncated(png(200, 200)), "image/png"),
            frozenset({422}),
            weight=0.4,
        ),
        lg.Kind(
            "bomb",
            CLASSIFY,
            lg.post(CLASSIFY, p.png_bomb(50_000, 50_000), "image/png"),
            frozenset({413}),
            weight=0.4,
        ),
        lg.Kind(
            "declared_too_large",
            CLASSIFY,
            f"POST {CLASSIFY} HTTP/1.1\r\nHost: x\r\nContent-Length: {4 * MAX_BODY}\r\n\r\n".encode(),
            frozenset({413}),
            weight=0.2,
        ),
        lg.Kind(
            "top_k_abc",
            CLASSIFY,
            lg.post(CLASSIFY + "?top_k=abc", png(), "image/png"),
            frozenset({422}),
            weight=0.2,
        ),
        lg.Kind(
            "unknown_model",
            NAMED,
            lg.post("/v1/models/nope/classify", png(), "image/png"),
            frozenset({404}),
            weight=0.2,
        ),
    ]


def test_soak(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_version(repo, MODEL, 1, seed=1)
    limits = flags(max_body_bytes=MAX_BODY, engine_threads=1, preprocess_threads=2)
    with serve(repo, *limits, env={"XNORNET_ADMIN_TOKEN": TOKEN}) as srv:
        host, port = srv.address
        pid = srv.proc.pid
        mix = kinds()
        # a short warm-up burst of the same mix, then the idle baselines
        asyncio.run(lg.run(host, port, mix, concurrency=CONCURRENCY, duration=2.0, seed=1))
        time.sleep(0.3)
        fds_before = fd_count(pid)
        before = scrape(host, port)

        good_versions = {"1"}
        loads: list[tuple[int, str, int]] = []  # (version, how, status)
        samples: list[tuple[float, int]] = []

        async def reloader() -> None:
            version, n = 1, 0
            corruptions = list(CORRUPTIONS)
            t_end = time.perf_counter() + SOAK_SECONDS - 1.0
            while time.perf_counter() + RELOAD_EVERY_S < t_end:
                await asyncio.sleep(RELOAD_EVERY_S)
                version += 1
                if n % 2 == 0:
                    how = "good"
                    write_version(repo, MODEL, version, seed=version)
                    good_versions.add(str(version))  # before the load: responses may name it at once
                else:
                    how = corruptions[(n // 2) % len(corruptions)]
                    write_corrupt_version(repo, MODEL, version, how)
                n += 1
                conn = lg.Conn(host, port)
                raw = (
                    f"POST /admin/models/{MODEL}/load HTTP/1.1\r\nHost: x\r\n"
                    f"Authorization: Bearer {TOKEN}\r\nContent-Length: 0\r\n\r\n"
                ).encode()
                status, _, _ = await conn.request(raw)
                await conn.aclose()
                loads.append((version, how, status))

        async def sampler() -> None:
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < SOAK_SECONDS:
                samples.append((time.perf_counter() - t0, rss_bytes(pid)))
                await asyncio.sleep(0.25)

        async def main() -> lg.Report:
            report, _, _ = await asyncio.gather(
                lg.run(host, port, mix, concurrency=CONCURRENCY, duration=SOAK_SECONDS, seed=5),
                reloader(),
                sampler(),
            )
            return report

        report = asyncio.run(main())
        time.sleep(0.5)  # the server notices the closed connections
        after = scrape(host, port)
        fds_after = fd_count(pid)

    by_kind = {k.name: k for k in mix}
    statuses = Counter((r.kind, r.status) for r in report.results)
    failed_good = [r for r in report.results if by_kind[r.kind].good and r.status != 200]
    wrong = [r for r in report.results if r.status not in by_kind[r.kind].expect]
    bad_versions = Counter(
        r.version for r in report.results if r.status == 200 and r.version not in good_versions
    )

    # response counts vs the server's own counters
    client: Counter[tuple[str, str]] = Counter()
    for r in report.results:
        client[(by_kind[r.kind].endpoint, str(r.status))] += 1
    for _, _, status in loads:
        client[(LOAD, str(status))] += 1
    b, a = requests_total(before), requests_total(after)
    server: Counter[tuple[str, str]] = Counter()
    for k in set(a) | set(b):
        if a.get(k, 0) - b.get(k, 0):
            server[k] = int(a.get(k, 0) - b.get(k, 0))

    warm = [rss for t, rss in samples if t >= WARMUP_FRACTION * SOAK_SECONDS]
    base = warm[0]
    growth = (max(warm) - base) / MiB
    drift = (sum(warm[-4:]) / len(warm[-4:]) - sum(warm[:4]) / len(warm[:4])) / MiB
    n = len(report.results)
    print(
        f"\nsoak: {SOAK_SECONDS:.0f} s at concurrency {CONCURRENCY}: {n} requests "
        f"({n / report.elapsed:.0f}/s), statuses {dict(Counter(r.status for r in report.results))}, "
        f"loads {loads}; RSS after warm-up {base / MiB:.1f} MiB, "
        f"max +{growth:.1f} MiB (bound {RSS_GROWTH_MIB}), "
        f"drift {drift:+.1f} MiB (bound {FLAT_MIB}); fds {fds_before} -> {fds_after}"
    )
    assert not failed_good, failed_good[:5]
    assert not wrong, wrong[:5]
    assert not bad_versions, bad_versions
    assert all(s == (200 if how == "good" else 422) for _, how, s in loads), loads
    assert sum(1 for _, how, _ in loads if how != "good") >= 1, loads
    assert client == server, (client - server, server - client)
    assert all(statuses[(k.name, s)] > 0 for k in mix for s in k.expect), statuses
    assert growth <= RSS_GROWTH_MIB and drift <= FLAT_MIB, samples
    assert fds_after <= fds_before + FD_SLACK, (fds_before, fds_after)
