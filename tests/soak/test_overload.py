"""Overload: offered load far past capacity gets fast 503s with Retry-After from the
bounded queue, /healthz stays under 50 ms at p99, accepted throughput does not collapse, and
once the load stops the queue drains and latency returns to normal.

The model is heavy enough (tests.soak.common.heavy_model) that one engine thread is the
bottleneck; the batch queue holds QUEUE images. The generator runs in a subprocess.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.e2e.conftest import MODEL, flags, serve
from tests.hostile.rawhttp import request
from tests.service.images import png
from tests.service.modelgen import write_version

from .common import Prober, heavy_model, loadgen, scrape

QUEUE = 32
HEALTHZ_P99_S = 0.050  # the service's target
REJECT_P99_S = 0.100
# Tail latencies measured from the client on a 2-core machine that also runs the load generator
# are a benchmark, not a unit-test property (timings on shared machines drift): by default the
# test holds them to sanity bounds and reports the figures; XNORNET_STRICT_TIMING=1 holds them to
# the service's targets (run it on a quiet machine, as a measurement).
BUSY_HEALTHZ_P99_S = 0.250
BUSY_REJECT_P99_S = 0.400


def machine_is_busy() -> bool:
    """True unless strict timing was asked for (see above)."""
    return os.environ.get("XNORNET_STRICT_TIMING") != "1"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def test_overload_sheds_fast_and_recovers(tmp_path: Path) -> None:
    busy = machine_is_busy()
    healthz_bound = BUSY_HEALTHZ_P99_S if busy else HEALTHZ_P99_S
    reject_bound = BUSY_REJECT_P99_S if busy else REJECT_P99_S
    repo = tmp_path / "repo"
    write_version(repo, MODEL, 1, heavy_model())
    image = tmp_path / "img.png"
    image.write_bytes(png(64, 48))
    batching = flags(max_batch_size=8, max_batch_delay_ms=2, queue_capacity=QUEUE)
    with serve(repo, *batching, *flags(engine_threads=1, preprocess_threads=2, request_timeout_s=10)) as srv:
        host, port = srv.address
        for _ in range(5):
            assert request(host, port, "POST", "/v1/classify", {}, image.read_bytes()).status == 200

        before = loadgen(srv.url, image, concurrency=8, duration=3)
        capacity = before["ok_per_s"]
        assert before["statuses"] == {"200": before["sent"]}, before

        rate = min(4000.0, 3 * capacity)
        m0 = scrape(host, port)
        with Prober(host, port) as probe:
            during = loadgen(srv.url, image, concurrency=64, duration=6, rate=rate)
        t_stop = time.monotonic()
        drained = None
        while time.monotonic() - t_stop < 5:
            m = scrape(host, port)
            if (
                m.get(f'xnornet_queue_depth{{model="{MODEL}"}}', 0) == 0
                and m["xnornet_inflight_requests"] == 0
            ):
                drained = time.monotonic() - t_stop
                break
            time.sleep(0.05)
        m1 = scrape(host, port)
        after = loadgen(srv.url, image, concurrency=8, duration=3)
        decoded = (
            m1[f'xnornet_preprocess_seconds_count{{model="{MODEL}"}}']
            - m0[f'xnornet_preprocess_seconds_count{{model="{MODEL}"}}']
        )

        hz_p99 = pct(probe.latencies, 99)
        report = {
            "capacity_ok_per_s": capacity,
            "offered_per_s": rate,
            "before": before,
            "during": during,
            "after": after,
            "healthz": {
                "n": len(probe.latencies),
                "p50_ms": round(pct(probe.latencies, 50) * 1e3, 2),
                "p99_ms": round(hz_p99 * 1e3, 2),
                "failures": probe.failures[:3],
            },
            "drained_after_s": drained,
            "decoded_during": decoded,
            "machine": f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
            + ("sanity tail bounds" if busy else "strict tail bounds (XNORNET_STRICT_TIMING=1)"),
        }
        print("\noverload:", report)
        st = during["statuses"]
        assert set(st) <= {"200", "503"}, report  # shed with 503, never a 5xx of another kind or a 504
        assert int(st.get("503", 0)) > int(st.get("200", 0)), report  # it was well past capacity
        assert during["retry_after_on_all_503"], report
        # fast: a refusal never waits behind the queue, nor behind decoding
        assert during["latency_503"]["p50_ms"] < 50, report
        assert during["latency_503"]["p99_ms"] < reject_bound * 1e3, report
        assert during["latency_503"]["p99_ms"] < during["latency_200"]["p50_ms"], report
        assert not probe.failures and hz_p99 < healthz_bound, report
        # a refusal costs no decode: only the accepted images were preprocessed
        assert decoded == int(st.get("200", 0)), report
        # accepted throughput does not collapse (on a busy machine the load generator and other jobs
        # take CPU from the server during overload, so only a deeper fall counts there)
        assert during["ok_per_s"] >= (0.35 if busy else 0.5) * capacity, report
        assert drained is not None and drained < 2.0, report
        assert after["statuses"] == {"200": after["sent"]}, report
        assert after["ok_per_s"] >= 0.7 * capacity, report
        assert after["latency_200"]["p50_ms"] <= 2 * before["latency_200"]["p50_ms"] + 10, report
