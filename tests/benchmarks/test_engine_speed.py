"""`xnornet bench` and `xnornet bench --sweep`: the output's schema, not its speed
(speed is measured by running the command, never by a timed test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def _xnornet(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xnornet", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_bench_json_has_the_documented_fields() -> None:
    proc = _xnornet("bench", "--json", "--batch", "1", "--threads", "1", "--repeat", "1", "--warmup", "0")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["isa"] in ("scalar", "avx2", "avx512")
    assert [(row["batch"], row["threads"]) for row in r["runs"]] == [(1, 1)]
    row = r["runs"][0]
    assert row["engine_ms_per_image"] > 0
    assert row["edges"] in ("float32", "int8")
    names = [layer["name"] for layer in r["layers"]]
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
        assert name in names
    assert all(layer["ms"] >= 0 and layer["gops"] >= 0 for layer in r["layers"])
    assert r["model_bytes"] * 9 <= r["float32_model_bytes"]
    try:
        import torch  # noqa: F401
    except ImportError:
        assert row["torch_float_ms_per_image"] is None
    else:
        assert row["speedup"] == pytest.approx(row["torch_float_ms_per_image"] / row["engine_ms_per_image"])
        assert r["binary_layers_speedup"] > 0
    assert "[bench]" in proc.stderr  # progress is shown


def test_bench_compares_edges_in_one_run() -> None:
    proc = _xnornet(
        "bench", "--json", "--no-torch", "--no-openvino", "--batch", "1", "--threads", "1",
        "--edges", "float32", "--edges", "int8", "--repeat", "1", "--warmup", "0",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["edges"] == ["float32", "int8"]
    assert [row["edges"] for row in r["runs"]] == ["float32", "int8"]
    kinds = {e: {layer["name"]: layer["kind"] for layer in r["layers_by_edges"][e]} for e in r["edges"]}
    assert kinds["float32"]["conv1"] == "conv2d" and kinds["int8"]["conv1"] == "qconv2d"
    assert kinds["float32"]["fc8"] == "linear" and kinds["int8"]["fc8"] == "qlinear"
    sizes = r["model_bytes_by_edges"]
    assert sizes["int8"] <= 12.5e6 < sizes["float32"]  # the int8 AlexNet file stays in L3


def test_bench_openvino_baseline_or_a_clear_skip() -> None:
    proc = _xnornet(
        "bench", "--json", "--no-torch", "--batch", "1", "--threads", "1", "--repeat", "1", "--warmup", "0"
    )
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    row = r["runs"][0]
    try:
        import openvino  # noqa: F401
    except ImportError:
        assert "OpenVINO is not installed" in proc.stderr
        assert "openvino_ms_per_image" not in row and r["openvino_version"] is None
    else:
        assert row["openvino_ms_per_image"] > 0 and r["openvino_version"]
        assert row["speedup_vs_openvino"] == pytest.approx(
            row["openvino_ms_per_image"] / row["engine_ms_per_image"]
        )


def test_bench_ceilings_give_each_layer_its_share() -> None:
    proc = _xnornet(
        "bench", "--json", "--ceilings", "--no-torch", "--no-openvino", "--batch", "1", "--threads", "1",
        "--repeat", "1", "--warmup", "0",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["ceilings"]["fma_gops"] > 0 and r["ceilings"]["popcount_gops"] > 0
    by_name = {layer["name"]: layer for layer in r["layers"]}
    assert by_name["conv2"]["ceiling"] == "popcount" and by_name["conv2"]["compute_share"] > 0
    assert by_name["conv1"]["ceiling"] == ("int8" if r["edges"][0] == "int8" else "fma")  # default edges
    assert by_name["fc6"]["bandwidth_share"] > 0 and by_name["fc8"]["weight_gbps"] > 0
    assert by_name["pool1"]["ceiling"] is None and by_name["pool1"]["compute_share"] is None


def test_openvino_network_runs_binary_convolutions() -> None:
    pytest.importorskip("openvino")
    from benchmarks import openvino_alexnet

    kinds = openvino_alexnet.runtime_layer_types(openvino_alexnet.load())
    # conv2..conv5, fc6, fc7 on OpenVINO's own binary kernel; conv1 and fc8 float
    assert kinds.get("BinaryConvolution") == 6 and kinds.get("Convolution") == 2


def test_sweep_writes_json_and_three_pngs(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    proc = _xnornet("bench", "--sweep", "--quick", "--repeat", "3", "--plot", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    r = json.loads((tmp_path / "sweep.json").read_text())
    assert [p["c"] for p in r["channels"]] == [1, 16, 256]
    assert [p["k"] for p in r["kernels"]] == [1, 3]
    for p in r["channels"] + r["kernels"]:
        assert p["binary_ms"] > 0 and p["engine_float_ms"] > 0
        assert p["paper_speedup"] == pytest.approx(64 * p["c"] * p["k"] ** 2 / (p["c"] * p["k"] ** 2 + 64))
    assert r["ceiling"]["ratio"] > 0
    assert set(r["model_sizes"]) == {"AlexNet", "ResNet-18", "VGG-19"}
    for sizes in r["model_sizes"].values():
        assert sizes["float64"] == 2 * sizes["float32"] > sizes["packed"] * 2
    for name in ("speedup_channels.png", "speedup_filter.png", "model_sizes.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
