"""The service benchmark (benchmarks/service_speed.py): schema and ratios, never timings.

One run in a tiny configuration (sub-second measurements, a narrow AlexNet, four connections)
checks that the servers start and stop, every configuration reports, and the ratios are the
quotients of the reported throughputs. How fast anything is, is not asserted.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks import images, loadtest, service_speed, wrkload

ROOT = Path(__file__).resolve().parents[2]
HAVE_TORCH = importlib.util.find_spec("torch") is not None
RESULT_KEYS = {"requests_per_s", "p50_ms", "p90_ms", "p99_ms", "errors"}
HTTP_KEYS = RESULT_KEYS | {"mean_batch_size", "server_cpu_ms_per_request", "client_cpu_ms_per_request"}


def _engine_built() -> bool:
    try:
        from engine import Model  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _engine_built(), reason="the C engine is not built")
def test_compare_command_tiny_run(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.service_speed",
        "--json",
        "--duration",
        "0.5",
        "--warmup",
        "0.2",
        "--concurrency",
        "2",
        "4",
        "--max-batch-size",
        "4",
        "--alexnet-width",
        "0.1",
        "--alexnet-batch",
        "4",
        "--torch",
        "yes" if HAVE_TORCH else "no",
        "--breakdown",
        "--load-generator",
        "httpload",  # sub-second measurements; wrk counts whole seconds (the test below)
    ]
    report = _run_benchmark(cmd)
    assert report["settings"]["load_generator"] == "httpload"
    assert report["settings"]["alexnet_edges"] == "int8"  # what exporters write by default

    expected = set(service_speed.CONFIGS) - (set() if HAVE_TORCH else {"alexnet_torch"})
    expected |= set(service_speed.DIAGNOSTIC)
    results = report["results"]
    assert set(results) == expected
    for name, r in results.items():
        assert (HTTP_KEYS if name != "direct" else RESULT_KEYS) <= set(r), name
        assert r["requests_per_s"] > 0 and r["errors"] == 0, (name, r)
    assert results["batch32"]["max_batch_size"] == 4 and results["batch1"]["max_batch_size"] == 1
    assert results["batch1"]["mean_batch_size"] == 1.0
    assert results["alexnet_xnor_b1"]["mean_batch_size"] == 1.0
    assert results["alexnet_xnor"]["max_batch_size"] == 4
    assert results["workers2"]["workers"] == 2 and results["batch32"]["workers"] == 1
    assert (
        results["alexnet_xnor_12mp"]["image"] == "jpeg12mp" and results["alexnet_xnor_png"]["image"] == "png"
    )
    assert report["images"]["jpeg12mp"] > report["images"]["jpeg"]
    # every level measured; the headline results are the highest level's
    assert set(report["by_concurrency"]) == {"2", "4"}
    assert report["by_concurrency"]["4"]["results"] == results
    assert report["by_concurrency"]["2"]["results"]["batch32"]["concurrency"] == 2
    assert results["batch1_predecoded"]["mean_batch_size"] == 1.0
    assert results["batch32_predecoded"]["max_batch_size"] == 4
    assert {results[c]["engine"] for c in service_speed.DIAGNOSTIC} == {"engine-predecoded"}
    assert results["alexnet_torch" if HAVE_TORCH else "alexnet_xnor"]["engine"] == (
        "torch" if HAVE_TORCH else "engine"
    )

    ratios = report["ratios"]
    rps = {k: v["requests_per_s"] for k, v in results.items()}
    assert ratios["batching_speedup"] == pytest.approx(rps["batch32"] / rps["batch1"], abs=1e-3)
    assert ratios["service_vs_direct"] == pytest.approx(rps["batch32"] / rps["direct"], abs=1e-3)
    assert ratios["workers_speedup"] == pytest.approx(rps["workers2"] / rps["batch32"], abs=1e-3)
    assert ratios["alexnet_batching"] == pytest.approx(rps["alexnet_xnor"] / rps["alexnet_xnor_b1"], abs=1e-3)
    assert ratios["batching_speedup_predecoded"] == pytest.approx(
        rps["batch32_predecoded"] / rps["batch1_predecoded"], abs=1e-3
    )
    assert "batching_speedup_predecoded" not in report["targets"]  # a diagnostic, not a target
    if HAVE_TORCH:
        assert ratios["xnor_vs_torch"] == pytest.approx(rps["alexnet_xnor"] / rps["alexnet_torch"], abs=1e-3)
    else:
        assert ratios["xnor_vs_torch"] is None
    targets = (("service_vs_direct", 0.85), ("workers_speedup", 1.3), ("xnor_vs_torch", 6.0))
    for key, target in (*targets, ("alexnet_batching", 1.2)):
        t = report["targets"][key]
        assert t["target"] == target and t["value"] == ratios[key]
        assert t["met"] == (None if ratios[key] is None else ratios[key] >= target)
    assert "batching_speedup" not in report["targets"]  # reported, without a target
    for config, most in (("framework", 1.0), ("alexnet_xnor", 4.5)):
        t = report["cpu_targets"][config]
        cpu = results[config]["server_cpu_ms_per_request"]
        assert t == {"at_most_ms": most, "value": cpu, "met": cpu <= most}
    # the server's CPU by thread name: the event loop ("main") and the named decode threads
    # account for the process's CPU (tick resolution: 10 ms over a sub-second window)
    for name, r in results.items():
        if name == "direct":
            continue
        by_thread = r["server_cpu_ms_per_request_by_thread"]
        total = r["server_cpu_ms_per_request"]
        assert sum(by_thread.values()) == pytest.approx(total, rel=0.2, abs=0.5), name
    assert {"main", "xnornet-decode"} <= set(results["batch32"]["server_cpu_ms_per_request_by_thread"])
    assert report["errors"] == 0
    assert report["settings"]["concurrency"] == [2, 4] and report["image"]["bytes"] > 10_000
    assert report["server"]["uvicorn_loop"] in ("asyncio", "uvloop")


def _run_benchmark(cmd: list[str]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XNORNET_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "server batch32 ready" in proc.stderr  # progress goes to stderr, the JSON alone to stdout
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


@pytest.mark.skipif(not _engine_built(), reason="the C engine is not built")
@pytest.mark.skipif(not wrkload.available(), reason="wrk is not installed (apt-get install wrk)")
def test_wrk_load_generator_reports_what_httpload_reports() -> None:
    cmd = [sys.executable, "-m", "benchmarks.service_speed", "--json", "--load-generator", "wrk"]
    cmd += ["--only", "batch32", "--only", "direct", "--duration", "1", "--warmup", "0"]
    cmd += ["--concurrency", "3", "--max-batch-size", "4"]
    report = _run_benchmark(cmd)
    assert report["settings"]["load_generator"] == "wrk"
    r = report["results"]["batch32"]
    assert set(r) >= HTTP_KEYS and r["generator"] == "wrk" and r["concurrency"] == 3
    assert r["requests_per_s"] > 0 and r["errors"] == 0 and r["requests"] > 0
    assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"]
    assert 1.0 <= r["mean_batch_size"] <= 3.0  # three connections, one request in flight each
    assert r["server_cpu_ms_per_request"] > 0 and r["client_cpu_ms_per_request"] > 0
    direct = report["results"]["direct"]["requests_per_s"]
    assert report["ratios"]["service_vs_direct"] == pytest.approx(r["requests_per_s"] / direct, abs=1e-3)


def _result(rps: float, **extra: object) -> dict[str, object]:
    return {"requests_per_s": rps, "p50_ms": 1.0, "p90_ms": 2.0, "p99_ms": 3.0, "errors": 0, **extra}


def test_report_ratios_are_medians_over_rounds() -> None:
    args = service_speed.build_parser().parse_args(["--rounds", "3"])
    rounds = [
        {"batch32": _result(300), "batch1": _result(100), "direct": _result(400)},
        {"batch32": _result(200), "batch1": _result(100), "direct": _result(200)},
        {"batch32": _result(500), "batch1": _result(200), "direct": _result(500)},
    ]
    report = service_speed._report(args, b"x" * 20, ["batch32", "batch1", "direct"], rounds, 2)
    # per round: batching 3.0, 2.0, 2.5 -> median 2.5; service/direct 0.75, 1.0, 1.0 -> 1.0
    assert report["ratios"] == {
        "batching_speedup": 2.5,
        "service_vs_direct": 1.0,
        "workers_speedup": None,
        "xnor_vs_torch": None,
        "alexnet_batching": None,
    }
    assert [r["batching_speedup"] for r in report["ratios_per_round"]] == [3.0, 2.0, 2.5]
    assert report["results"]["batch32"]["requests_per_s"] == 300  # the median run, whole
    assert report["targets"]["service_vs_direct"]["met"] is True
    assert report["targets"]["xnor_vs_torch"]["met"] is None
    table = service_speed.format_table(report)
    assert "service_vs_direct" in table and "NOT MET" not in table and "n/a" in table


def test_report_adds_the_predecoded_ratio_when_measured() -> None:
    args = service_speed.build_parser().parse_args(["--rounds", "1", "--breakdown"])
    configs = ["batch32", "batch1", *service_speed.DIAGNOSTIC]
    rounds = [
        {
            "batch32": _result(300),
            "batch1": _result(200),
            "batch32_predecoded": _result(900),
            "batch1_predecoded": _result(400),
        }
    ]
    report = service_speed._report(args, b"x" * 20, configs, rounds, 2)
    assert report["ratios"]["batching_speedup"] == 1.5
    assert report["ratios"]["batching_speedup_predecoded"] == 2.25
    assert set(report["targets"]) == set(service_speed.TARGETS)
    assert "2.25  with each image decoded once" in service_speed.format_table(report)


def test_predecoded_decodes_each_image_once() -> None:
    calls: list[bytes] = []

    def fake_preprocess(data: bytes, spec: object, max_pixels: int) -> np.ndarray:
        calls.append(data)
        return np.full(3, len(data), np.float32)

    cached = service_speed.predecoded(fake_preprocess)
    a, b = b"a" * 1000, b"a" * 999 + b"b"  # same length and start, different end
    first = cached(a, "spec", 10)
    assert cached(bytes(a), "spec", 10) is first  # an equal body in a new object: not decoded again
    assert cached(b, "spec", 10)[0] == 1000 and calls == [a, b]
    cached(a, "other-spec", 10)
    assert len(calls) == 3  # the model's input spec is part of the key


@pytest.mark.parametrize("kind", ["engine", "engine-predecoded"])
def test_child_swaps_in_the_cache_only_for_the_predecoded_kind(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    from types import SimpleNamespace

    from service import imaging, server

    seen: list[object] = []

    def fake_make_server(settings: object, loader: object = None, preprocess: object = None) -> Any:
        seen.append(preprocess)  # None: the app runs imaging.preprocess
        return SimpleNamespace(config=SimpleNamespace(), run=lambda: None, started=True)

    monkeypatch.setattr(server, "make_server", fake_make_server)
    before = imaging.preprocess
    assert service_speed._child([kind, json.dumps({"log_level": "warning"})]) == 0
    assert (seen[0] is None) == (kind == "engine")
    assert imaging.preprocess is before  # the product's function is passed in, never replaced


def test_loadtest_compare_flag_delegates(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        seen.append(argv)
        return 0

    monkeypatch.setattr(service_speed, "main", fake_main)
    parser = argparse.ArgumentParser()
    loadtest.add_arguments("loadtest", parser)
    args = parser.parse_args(["--compare", "--duration", "3", "--concurrency", "8", "--json"])
    assert loadtest.run("loadtest", args) == 0
    assert seen == [["--duration", "3.0", "--warmup", "1.0", "--concurrency", "8", "--json"]]


def test_synthetic_image_is_a_640x480_jpeg() -> None:
    import io

    from PIL import Image

    data = images.synthetic_jpeg()
    with Image.open(io.BytesIO(data)) as img:
        assert (img.format, img.size) == ("JPEG", (640, 480))
    assert data == images.synthetic_jpeg()  # deterministic
