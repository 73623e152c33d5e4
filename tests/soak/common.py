"""Shared pieces of the soak and overload tests: a model heavy enough that the engine is the
bottleneck, Prometheus scraping, a /healthz prober, and the load generator subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from engine import builders
from engine.graph import Graph, Node
from engine.input_spec import InputSpec
from tests.e2e.conftest import ROOT
from tests.hostile.rawhttp import read_response


def heavy_model(seed: int = 0, width: int = 256, blocks: int = 3) -> Graph:
    """Gray 28x28 -> conv -> `blocks` x (width x width binary conv + bn) -> pool -> linear.

    About 5 ms per image on one AVX-512 core (more on narrower ISAs), so that one engine thread,
    not decoding or HTTP, limits throughput and the bounded batch queue is what overflows.
    """
    rng = np.random.default_rng(seed)

    def bn(n: str) -> Node:
        return builders.batchnorm(
            np.ones(width),
            rng.standard_normal(width) * 0.1,
            rng.standard_normal(width) * 0.1,
            np.ones(width),
            name=n,
        )

    nodes = [
        builders.conv2d(
            rng.standard_normal((width, 1, 3, 3)).astype(np.float32) * 0.5,
            rng.standard_normal(width) * 0.1,
            stride=1,
            padding=1,
            name="conv1",
        ),
        bn("bn1"),
    ]
    for b in range(blocks):
        signs, alpha = builders.binarize_weights(rng.standard_normal((width, width, 3, 3)))
        nodes += [
            builders.bconv2d(signs, alpha, stride=1, padding=1, mode="xnor", name=f"bconv{b}"),
            bn(f"bn{b + 2}"),
        ]
    nodes += [
        builders.maxpool(4),
        builders.simple("relu"),
        builders.simple("flatten"),
        builders.linear(
            rng.standard_normal((10, width * 7 * 7)).astype(np.float32) * 0.01,
            rng.standard_normal(10) * 0.1,
            name="fc",
        ),
    ]
    spec = InputSpec(1, 28, 28, color="gray", resize="exact", scale=1 / 255, mean=(0.5,), std=(0.25,))
    return Graph(spec, nodes, [f"class {i}" for i in range(10)], "heavy")


def scrape(host: str, port: int) -> dict[str, float]:
    r = http_get(host, port, "/metrics")
    out: dict[str, float] = {}
    for line in r[2].decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def requests_total(metrics: dict[str, float]) -> dict[tuple[str, str], float]:
    """xnornet_requests_total summed over models: (endpoint, status) -> count."""
    out: dict[tuple[str, str], float] = {}
    for key, value in metrics.items():
        if key.startswith("xnornet_requests_total{"):
            labels = dict(
                part.split("=", 1)
                for part in key[len("xnornet_requests_total{") : -1].split(",")
                if "=" in part
            )
            k = (labels["endpoint"].strip('"'), labels["status"].strip('"'))
            out[k] = out.get(k, 0.0) + value
    return out


def http_get(host: str, port: int, path: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return read_response(sock, time.monotonic() + timeout)


class Prober:
    """GET /healthz on a fresh connection every `interval` s in a thread (as a kubelet would)."""

    def __init__(self, host: str, port: int, interval: float = 0.02) -> None:
        self.host, self.port, self.interval = host, port, interval
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.perf_counter()
            try:
                status, _, _ = http_get(self.host, self.port, "/healthz", timeout=5)
                if status != 200:
                    self.failures.append(f"status {status}")
            except OSError as exc:
                self.failures.append(repr(exc))
            self.latencies.append(time.perf_counter() - t0)
            self._stop.wait(self.interval)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def loadgen(
    url: str, image: Path, *, concurrency: int, duration: float, rate: float | None = None
) -> dict[str, Any]:
    """tests.soak.loadgen in a subprocess (its own GIL); its JSON summary."""
    cmd = [
        sys.executable,
        "-m",
        "tests.soak.loadgen",
        "--url",
        url,
        "--image",
        str(image),
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration),
    ]
    if rate is not None:
        cmd += ["--rate", str(rate)]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed ({out.returncode}):\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result
