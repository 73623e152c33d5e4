"""The service benchmark in one command: servers on loopback, load, a table and ratios.

    python -m benchmarks.service_speed [--duration 15] [--concurrency 32] [--image FILE] [--json]
    xnornet loadtest --compare [--duration 15] [--json]            (the same thing)

One run measures, one configuration after the other, on this machine:

  batch32       `xnornet serve`'s app with the bundled model (fashion-mnist-xnor), max_batch_size=32
  batch1        the same with max_batch_size=1
  direct        decode + preprocess + engine in a loop in this process (no HTTP, batch 1)
  workers2      batch32 as `xnornet serve --workers 2` (CPU: the supervisor and its workers)
  framework     the same service around a model and a preprocessing that cost nothing: its CPU
                per request is the service's own path (HTTP, routing, thread hops, batcher, JSON,
                metrics)
  alexnet_xnor  the same service serving a seeded XNOR AlexNet (benchmarks.architectures.alexnet)
                with the edges exporters write by default (int8 conv1 and fc8; --alexnet-edges),
                max_batch_size=16 (--alexnet-batch)
  alexnet_xnor_b1    the same with max_batch_size=1
  alexnet_torch the same service, the same file, but a loader that runs the PyTorch float32 twin
                (benchmarks.engine_speed.torch_alexnet) instead of the C engine: only the engine differs
  alexnet_xnor_12mp  alexnet_xnor sent a 4032x3024 (12 MP, phone-size) JPEG
  alexnet_xnor_png   alexnet_xnor sent the 640x480 photo as PNG

each at every `--concurrency` level (default 16 and 32), and reports requests/s, p50/p90/p99
latency, errors, mean batch size and CPU time per request (server and load generator), then the
ratios with targets (at the highest concurrency level, medians over rounds):

  service_vs_direct  batch32 / direct                 target >= 0.85
  workers_speedup    workers2 / batch32               target >= 1.3
  xnor_vs_torch      alexnet_xnor / alexnet_torch     target >= 6
  alexnet_batching   alexnet_xnor / alexnet_xnor_b1   target >= 1.2
  batching_speedup   batch32 / batch1                 (no target: the bundled model's 0.1 ms
                                                       inference leaves batching little to win)

and the server CPU per request of `framework` (target <= 1.0 ms) and `alexnet_xnor` (<= 4.5 ms).

`--breakdown` adds two diagnostic configurations, batch32_predecoded and batch1_predecoded: the
same servers, but each distinct image is decoded once and its tensor reused (the thread-pool hop
stays), and the ratio batching_speedup_predecoded. They show what batching gives once the
per-request JPEG decode is taken out; they are not the service users run.

Every request sends the same 640x480 JPEG (--image, or a synthetic photo-like one made here).
The load generator is a closed loop of `--concurrency` keep-alive connections: wrk
(benchmarks.wrkload, a C client in a child process, one thread) when it is on PATH, otherwise
benchmarks.httpload's asyncio client in this process (`--load-generator` chooses; the report
names the one used). Either shares the CPUs with the server, as any loopback benchmark does, and
its CPU time per request is reported so it can be accounted for (wrk takes several times less
than httpload, which is why it is preferred). On a shared machine throughput moves with the
neighbours' load: compare ratios from the same run (`--rounds N` repeats the sequence and
reports medians).

Servers are child processes on free ports (--port 0; the port is read from the log), started
together before the measurements (an idle server costs no CPU) and always stopped: SIGTERM,
then SIGKILL, also on Ctrl-C, and the kernel kills them if this process dies (PR_SET_PDEATHSIG).
PyTorch is optional (pip install torch==2.13.0, the 'train' extra): without it the torch
configuration is skipped and its ratio is null. Progress goes to stderr, the result to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from engine.input_spec import InputSpec
from engine.int8 import DEFAULT_EDGES, EDGES, Edges
from service.settings import BUNDLED_MODELS, DEFAULT_MODEL

from . import httpload, wrkload
from .child import ChildServer
from .images import synthetic_jpeg

ALEXNET = "alexnet-xnor"
FRAMEWORK = "framework"  # the service around a model and a preprocessing that cost nothing
CONFIGS = (
    "batch32",
    "batch1",
    "direct",
    "workers2",
    FRAMEWORK,
    "alexnet_xnor",
    "alexnet_xnor_b1",
    "alexnet_torch",
    "alexnet_xnor_12mp",
    "alexnet_xnor_png",
)
DIAGNOSTIC = ("batch32_predecoded", "batch1_predecoded")  # --breakdown
NULL_MODEL = "null"
# ratio -> the least it should be (numerator / denominator in the comment)
TARGETS = {
    "service_vs_direct": 0.85,  # batch32 / direct
    "workers_speedup": 1.3,  # workers2 / batch32 (the same server with --workers 1)
    "xnor_vs_torch": 6.0,  # alexnet_xnor / alexnet_torch
    "alexnet_batching": 1.2,  # alexnet_xnor (max_batch_size 16) / alexnet_xnor_b1, at concurrency 32
}
# configuration -> the most server CPU per request it should take (ms)
CPU_TARGETS = {FRAMEWORK: 1.0, "alexnet_xnor": 4.5}
# `xnornet serve` settings the benchmark can set on every server it starts (None = serve's default)
SERVER_OPTIONS = {
    "engine_spin": "the servers' engine polling rounds",
    "preprocess_nice": "the servers' preprocessing threads' nice increment",
}


def progress(msg: str) -> None:
    print(f"[service_speed {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- the PyTorch loader (runs in a server child) -------------------------------------------------
class TorchAlexNet:
    """engine.Model's face (info, isa, threads, infer) over PyTorch float32 AlexNet.

    The input spec, labels and output kind are the served .xnor file's (read with the engine,
    so preprocessing is byte-for-byte the XNOR server's); the network is its float twin,
    benchmarks.engine_speed.torch_alexnet, seeded. infer runs under inference_mode; torch releases the GIL.
    """

    isa = "torch-float32"

    def __init__(self, data: bytes, threads: int) -> None:
        import torch

        import engine

        from .engine_speed import torch_alexnet

        self._torch = torch
        info = engine.Model.from_bytes(data, threads=1).info
        self.info = SimpleNamespace(
            **{
                k: getattr(info, k)
                for k in (
                    "input",
                    "input_shape",
                    "labels",
                    "output_size",
                    "output_kind",
                )
            }
        )
        self.threads = threads
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        self.net = torch_alexnet(torch, classes=int(info.output_size))
        c = int(info.input_shape[0])
        self._scale = float(np.float32(info.scale))
        self._mean = torch.tensor(np.asarray(info.mean[:c], np.float32)).reshape(1, c, 1, 1)
        self._std = torch.tensor(np.asarray(info.std[:c], np.float32)).reshape(1, c, 1, 1)
        if tuple(info.input_shape) != (3, 227, 227):
            raise ValueError(f"the torch twin is AlexNet 3x227x227, the file takes {info.input_shape}")

    def infer(self, x: Any) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            if x.dtype == np.uint8:
                # Image pixels, NHWC: the float network normalizes them itself, as engine.Model does.
                t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float()
                t = (t * self._scale - self._mean) / self._std
            else:
                t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
            out = self.net(t)
        return out.numpy()


Preprocess = Callable[[bytes, Any, int], np.ndarray]


def predecoded(preprocess: Preprocess) -> Preprocess:
    """preprocess, but each distinct image is decoded once and its tensor reused afterwards.

    For the diagnostic configurations only: the load generator sends one image over and over, so
    this takes the JPEG decode out of every request but the first while the rest of the path (the
    thread-pool hop included) stays. Keyed by the length and both ends of the bytes, not by a
    hash of all of them, so that the lookup itself costs next to nothing.
    """
    cache: dict[tuple[Any, ...], np.ndarray] = {}

    def cached(data: bytes, spec: Any, max_pixels: int) -> np.ndarray:
        key = (len(data), data[:64], data[-64:], spec, max_pixels)
        x = cache.get(key)
        if x is None:
            x = preprocess(data, spec, max_pixels)
            if len(cache) < 16:
                cache[key] = x
        return x

    return cached


class NullModel:
    """engine.Model's face with nothing behind it: a 1x8x8 gray input, ten logits, no work.

    With `null_preprocess` it makes the `framework` configuration: whatever CPU the server spends
    per request then is the service's own path (HTTP, routing, the thread-pool hop, the batcher,
    JSON, metrics), the part no engine or imaging work can hide.
    """

    isa = "null"

    def __init__(self) -> None:
        self.threads = 1
        self.info = SimpleNamespace(
            input=InputSpec(1, 8, 8, "gray", "exact", 0, 1 / 255, (0.0,), (1.0,)),
            input_shape=(1, 8, 8),
            labels=tuple(f"class{i}" for i in range(10)),
            output_size=10,
            output_kind="logits",
        )

    def infer(self, x: Any) -> np.ndarray:
        out = np.zeros((len(x), 10), np.float32)
        out[:, 2] = 1.0
        return out


def null_preprocess(data: bytes, spec: Any, max_pixels: int) -> np.ndarray:
    """No decode: the input tensor of NullModel's shape, zeros."""
    return np.zeros((spec.channels, spec.height, spec.width), np.float32)


def null_repo(root: Path) -> None:
    path = root / NULL_MODEL / "1" / "model.xnor"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"no model: NullModel")


def _child(argv: list[str]) -> int:
    """`python -m benchmarks.service_speed --child {engine,engine-predecoded,torch,null} SETTINGS_JSON`:
    one server."""
    import logging

    from engine import default_threads
    from service.cli import plan_threads
    from service.imaging import preprocess
    from service.server import make_server
    from service.settings import Settings

    kind, options = argv[0], json.loads(argv[1])
    wrapped = predecoded(preprocess) if kind == "engine-predecoded" else None
    loop, http = options.pop("_uvicorn_loop", "auto"), options.pop("_uvicorn_http", "auto")
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # PyTorch gets the worker's whole share of the CPUs (or --threads): plan_threads halves the
    # share for the C engine because decoding runs beside it, and PyTorch's float network is
    # most of its requests' CPU, so it is given every core it could use.
    torch_threads = options.get("engine_threads") or max(1, default_threads() // options.get("workers", 1))
    settings = plan_threads(Settings(**options))  # as `xnornet serve` does
    if settings.workers > 1:
        from service.workers import run as run_workers

        return run_workers(settings)
    loader: Callable[[bytes, str], Any] | None = None
    if kind == NULL_MODEL:
        wrapped = null_preprocess
        loader = lambda data, source: NullModel()  # noqa: E731
    if kind == "torch":
        loader = lambda data, source: TorchAlexNet(data, torch_threads)  # noqa: E731
    server = make_server(settings, loader, wrapped)
    # read by server.run() -> config.load(); "auto" keeps make_server's choice
    if loop != "auto":
        server.config.loop = loop
    if http != "auto":
        server.config.http = http
    server.run()
    return 0 if server.started else 1


# -- server processes ------------------------------------------------------------------------------
class Server(ChildServer):
    def __init__(self, label: str, kind: str, settings: dict[str, Any]) -> None:
        self.label = label
        self.url: str | None = None
        super().__init__(
            [sys.executable, "-m", "benchmarks.service_speed", "--child", kind, json.dumps(settings)]
        )

    def on_line(self, line: str) -> bool:
        m = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
        if m and self.url is None:
            self.url = m.group(1)
        return self.url is not None

    def wait_ready(self, timeout: float) -> str:
        if not self.started(timeout) or self.url is None:
            raise RuntimeError(
                f"server {self.label} did not start (exit {self.proc.poll()}):\n" + "".join(self.log[-30:])
            )
        return self.url


@contextlib.contextmanager
def servers(
    specs: dict[str, tuple[str, dict[str, Any]]], timeout: float, verbose: bool = False
) -> Iterator[dict[str, Server]]:
    started: dict[str, Server] = {}
    try:
        for label, (kind, settings) in specs.items():
            started[label] = Server(label, kind, settings)
        for label, srv in started.items():
            progress(f"server {label} ready at {srv.wait_ready(timeout)}")
        yield started
    finally:
        for srv in started.values():
            srv.stop()
        if verbose:
            for label, srv in started.items():
                progress(f"server {label} log:\n" + "".join(srv.log))


# -- the benchmark ---------------------------------------------------------------------------------
def _alexnet_repo(root: Path, width: float, edges: Edges = DEFAULT_EDGES) -> None:
    from engine import format as fmt

    from . import architectures

    path = root / ALEXNET / "1" / "model.xnor"
    path.parent.mkdir(parents=True)
    fmt.write_model(architectures.alexnet(seed=0, width=width, edges=edges), path)


def _settings(
    repository: Path, model: str, batch: int, args: argparse.Namespace, workers: int = 1
) -> dict[str, Any]:
    return {
        "workers": workers,
        "host": "127.0.0.1",
        "port": 0,
        "repository": str(repository),
        "models": [model],
        "default_model": model,
        "max_batch_size": batch,
        "max_batch_delay_ms": args.max_batch_delay_ms,
        "engine_threads": args.threads,
        "preprocess_threads": args.preprocess_threads,
        **{name: getattr(args, name) for name in SERVER_OPTIONS if getattr(args, name) is not None},
        # A batch of 32 AlexNets in float32 takes seconds on two loaded cores: not a deadline test.
        "request_timeout_s": 600.0,
        "queue_capacity": max(256, 4 * max(args.concurrency)),
        "log_level": "info",  # uvicorn announces its port at info level (access log is off)
        "grace_s": 10.0,
        "_uvicorn_loop": args.loop,
        "_uvicorn_http": args.http,
    }


def _torch_available() -> bool:
    try:
        import importlib.util

        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
    if not a or not b or not b.get("requests_per_s"):
        return None
    return round(a["requests_per_s"] / b["requests_per_s"], 3)


def _images(args: argparse.Namespace) -> dict[str, bytes]:
    """The bodies the configurations send: the 640x480 photo as JPEG and PNG, and a 12 MP JPEG."""
    from PIL import Image

    jpeg = Path(args.image).read_bytes() if args.image else synthetic_jpeg()
    buf = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).convert("RGB").save(buf, "PNG")
    return {"jpeg": jpeg, "png": buf.getvalue(), "jpeg12mp": synthetic_jpeg(4032, 3024)}


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    use_torch = args.torch == "yes" or (args.torch == "auto" and _torch_available())
    if args.torch == "yes" and not _torch_available():
        raise SystemExit("service_speed: --torch yes but torch is not installed (pip install torch==2.13.0)")
    configs = [c for c in CONFIGS if c in args.only] if args.only else list(CONFIGS)
    if args.breakdown:
        configs += DIAGNOSTIC
    if not use_torch and "alexnet_torch" in configs:
        progress("torch is not installed: alexnet_torch skipped (pip install torch==2.13.0)")
        configs.remove("alexnet_torch")
    images = _images(args)
    from engine import default_threads

    generator = _generator(args.load_generator)
    measure = wrkload.load if generator == "wrk" else httpload.load
    progress(f"load generator: {generator}")

    bundled = Path(args.repository) if args.repository else BUNDLED_MODELS
    levels = sorted(set(args.concurrency))
    with tempfile.TemporaryDirectory(prefix="xnornet-bench-") as tmp:
        root = Path(tmp)
        if any(c.startswith("alexnet") for c in configs):
            edges = args.alexnet_edges
            progress(f"writing the seeded XNOR AlexNet (width {args.alexnet_width}, {edges} edges)")
            _alexnet_repo(root, args.alexnet_width, edges)
        if FRAMEWORK in configs:
            null_repo(root)
        model, alex = args.model, args.alexnet_batch
        plan: dict[str, tuple[str, dict[str, Any], str]] = {  # config -> (child kind, settings, image)
            "batch32": ("engine", _settings(bundled, model, args.max_batch_size, args), "jpeg"),
            "batch1": ("engine", _settings(bundled, model, 1, args), "jpeg"),
            "batch32_predecoded": (
                "engine-predecoded",
                _settings(bundled, model, args.max_batch_size, args),
                "jpeg",
            ),
            "batch1_predecoded": ("engine-predecoded", _settings(bundled, model, 1, args), "jpeg"),
            "workers2": ("engine", _settings(bundled, model, args.max_batch_size, args, workers=2), "jpeg"),
            FRAMEWORK: (NULL_MODEL, _settings(root, NULL_MODEL, args.max_batch_size, args), "jpeg"),
            "alexnet_xnor": ("engine", _settings(root, ALEXNET, alex, args), "jpeg"),
            "alexnet_xnor_b1": ("engine", _settings(root, ALEXNET, 1, args), "jpeg"),
            "alexnet_torch": ("torch", _settings(root, ALEXNET, alex, args), "jpeg"),
            "alexnet_xnor_12mp": ("engine", _settings(root, ALEXNET, alex, args), "jpeg12mp"),
            "alexnet_xnor_png": ("engine", _settings(root, ALEXNET, alex, args), "png"),
        }
        specs = {c: plan[c][:2] for c in configs if c != "direct"}
        progress(f"starting {len(specs)} servers: {', '.join(specs)}")
        rounds: dict[int, list[dict[str, dict[str, Any]]]] = {c: [] for c in levels}
        with servers(specs, args.startup_timeout, args.verbose) as running:
            for r in range(args.rounds):
                results: dict[int, dict[str, dict[str, Any]]] = {c: {} for c in levels}
                for config in configs:
                    tag = f"round {r + 1}/{args.rounds}: {config}"
                    if config == "direct":
                        progress(f"{tag}: in-process loop for {args.duration:g} s")
                        model_file = bundled / model / str(_highest(bundled / model)) / "model.xnor"
                        res = httpload.direct(model_file, images["jpeg"], args.duration, args.threads)
                        progress(f"{tag}: {res['requests_per_s']} req/s")
                        for level in levels:
                            results[level][config] = res
                        continue
                    kind, settings, image = plan[config]
                    srv = running[config]
                    assert srv.url is not None
                    for level in levels:
                        progress(
                            f"{tag}: concurrency {level}, {args.warmup:g} s warm-up + {args.duration:g} s"
                        )
                        res = asyncio.run(
                            measure(
                                httpload.Load(
                                    srv.url,
                                    "/v1/classify",
                                    images[image],
                                    level,
                                    args.duration,
                                    args.warmup,
                                    server_pid=srv.proc.pid,
                                )
                            )
                        )
                        res["max_batch_size"] = settings["max_batch_size"]
                        res["engine"] = kind
                        res["image"] = image
                        res["workers"] = settings.get("workers", 1)
                        rps, p99 = res["requests_per_s"], res["p99_ms"]
                        progress(f"{tag}: concurrency {level}: {rps} req/s, p99 {p99} ms")
                        results[level][config] = res
                for level in levels:
                    rounds[level].append(results[level])
    report = _report(args, images["jpeg"], configs, rounds[levels[-1]], default_threads())
    report["settings"]["load_generator"] = generator
    report["by_concurrency"] = {
        str(level): {
            "results": {c: _median_result([r[c] for r in rounds[level]]) for c in configs},
            "ratios": _median_ratios(rounds[level]),
        }
        for level in levels
    }
    report["images"] = {k: len(v) for k, v in images.items()}
    return report


def _generator(choice: str) -> str:
    """The HTTP load generator: wrk when asked for or, with "auto", when it is on PATH."""
    if choice == "wrk" and not wrkload.available():
        raise SystemExit("service_speed: --load-generator wrk, but wrk is not on PATH (apt-get install wrk)")
    if choice == "auto":
        return "wrk" if wrkload.available() else "httpload"
    return choice


def _resolved(choice: str, fast: str, default: str) -> str:
    """What uvicorn's "auto" picks in the servers (they run this interpreter)."""
    if choice != "auto":
        return choice
    import importlib.util

    return fast if importlib.util.find_spec(fast) is not None else default


def _highest(model_dir: Path) -> int:
    return max(int(p.name) for p in model_dir.iterdir() if p.name.isdigit())


def _median_result(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median throughput (one real run, so its fields stay consistent)."""
    ordered = sorted(runs, key=lambda r: r["requests_per_s"])
    return ordered[(len(ordered) - 1) // 2]


def _ratios(results: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    ratios = {
        "service_vs_direct": _ratio(results.get("batch32"), results.get("direct")),
        "workers_speedup": _ratio(results.get("workers2"), results.get("batch32")),
        "xnor_vs_torch": _ratio(results.get("alexnet_xnor"), results.get("alexnet_torch")),
        "alexnet_batching": _ratio(results.get("alexnet_xnor"), results.get("alexnet_xnor_b1")),
        "batching_speedup": _ratio(results.get("batch32"), results.get("batch1")),
    }
    if "batch32_predecoded" in results:
        ratios["batching_speedup_predecoded"] = _ratio(
            results.get("batch32_predecoded"), results.get("batch1_predecoded")
        )
    return ratios


def _median_ratios(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, float | None]:
    per_round = [_ratios(r) for r in rounds]
    ratios: dict[str, float | None] = {}
    for key in per_round[0] if per_round else TARGETS:
        values = [v for pr in per_round if (v := pr[key]) is not None]
        ratios[key] = round(statistics.median(values), 3) if values else None
    return ratios


def _report(
    args: argparse.Namespace,
    image: bytes,
    configs: list[str],
    rounds: list[dict[str, dict[str, Any]]],
    cpus: int,
) -> dict[str, Any]:
    results = {c: _median_result([r[c] for r in rounds]) for c in configs}
    per_round = [_ratios(r) for r in rounds]
    ratios = _median_ratios(rounds)
    cpu_targets = {}
    for config, most in CPU_TARGETS.items():
        cpu = results.get(config, {}).get("server_cpu_ms_per_request")
        cpu_targets[config] = {"at_most_ms": most, "value": cpu, "met": None if cpu is None else cpu <= most}
    return {
        "machine": {
            "cpus": cpus,
            "loadavg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        },
        "image": {"bytes": len(image), "source": args.image or "synthetic 640x480 JPEG (quality 90)"},
        "settings": {
            "model": args.model,
            "concurrency": args.concurrency,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "max_batch_size": args.max_batch_size,
            "max_batch_delay_ms": args.max_batch_delay_ms,
            "engine_threads": args.threads,
            "preprocess_threads": args.preprocess_threads,
            **{name: getattr(args, name) for name in SERVER_OPTIONS},
            "alexnet_width": args.alexnet_width,
            "alexnet_edges": args.alexnet_edges,
        },
        "server": {
            "uvicorn_loop": _resolved(args.loop, "uvloop", "asyncio"),
            "uvicorn_http": _resolved(args.http, "httptools", "h11"),
        },
        "results": results,
        "ratios": ratios,
        "ratios_per_round": per_round,
        "targets": {
            key: {"target": t, "value": v, "met": None if v is None else v >= t}
            for key, t in TARGETS.items()
            for v in [ratios[key]]
        },
        "cpu_targets": cpu_targets,
        "errors": sum(int(r.get("errors", 0)) for rr in rounds for r in rr.values()),
    }


def format_table(report: dict[str, Any]) -> str:
    """One row per configuration: requests/s and p99 at every concurrency level, then the mean
    batch size and CPU per request at the highest level (the one the ratios are taken at)."""
    levels = list(report.get("by_concurrency", {}))
    by = {lv: report["by_concurrency"][lv]["results"] for lv in levels}

    def at(level: str, key: str) -> Callable[[str, dict[str, Any]], Any]:
        return lambda c, r: by[level].get(c, {}).get(key)

    cols: list[tuple[str, int, Callable[[str, dict[str, Any]], Any]]] = [("config", 18, lambda c, r: c)]
    if levels:
        for lv in levels:
            cols += [(f"req/s@{lv}", 10, at(lv, "requests_per_s")), (f"p99@{lv} ms", 11, at(lv, "p99_ms"))]
    else:
        cols += [("req/s", 8, lambda c, r: r["requests_per_s"]), ("p99 ms", 8, lambda c, r: r.get("p99_ms"))]
    cols += [
        ("p50 ms", 8, lambda c, r: r.get("p50_ms")),
        ("errors", 6, lambda c, r: r.get("errors")),
        ("batch", 6, lambda c, r: r.get("mean_batch_size", "-")),
        ("srv cpu ms/req", 14, lambda c, r: r.get("server_cpu_ms_per_request", r.get("cpu_ms_per_request"))),
        ("client cpu ms/req", 17, lambda c, r: r.get("client_cpu_ms_per_request", "-")),
    ]
    lines = [" ".join(f"{name:>{w}}" for name, w, _ in cols)]
    for config, r in report["results"].items():
        lines.append(" ".join(f"{'-' if (v := f(config, r)) is None else v!s:>{w}}" for _, w, f in cols))
    lines.append("")
    for key, t in report["targets"].items():
        verdict = "n/a" if t["met"] is None else "MET" if t["met"] else "NOT MET"
        value = "-" if t["value"] is None else f"{t['value']:.2f}"
        lines.append(f"{key:>18}: {value:>6}  (target >= {t['target']:g})  {verdict}")
    for config, t in report.get("cpu_targets", {}).items():
        verdict = "n/a" if t["met"] is None else "MET" if t["met"] else "NOT MET"
        value = "-" if t["value"] is None else f"{t['value']:.2f}"
        lines.append(f"{config + ' cpu':>18}: {value:>6}  (target <= {t['at_most_ms']:g} ms/req)  {verdict}")
    if (v := report["ratios"].get("batching_speedup")) is not None:
        lines.append(f"{'batching_speedup':>18}: {v:>6.2f}  batch32 / batch1 (no target)")
    if (v := report["ratios"].get("batching_speedup_predecoded")) is not None:
        lines.append(f"{'batching_speedup':>18}: {v:>6.2f}  with each image decoded once (diagnostic)")
    m = report["machine"]
    lines.append(f"{'machine':>18}: {m['cpus']} CPUs, load average {m['loadavg']}")
    srv = report["server"]
    lines.append(f"{'server':>18}: uvicorn loop {srv['uvicorn_loop']}, http {srv['uvicorn_http']}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.service_speed",
        description="the service benchmark: batching, service overhead, XNOR vs PyTorch float32",
    )
    p.add_argument("--duration", type=float, default=15.0, help="seconds measured per configuration")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of load before each measurement")
    p.add_argument("--concurrency", type=int, nargs="+", default=[16, 32], help="requests in flight (levels)")
    p.add_argument("--rounds", type=int, default=1, help="repeat the sequence; report medians")
    p.add_argument("--image", default=None, help="the JPEG to send (default: a synthetic 640x480 photo)")
    p.add_argument(
        "--repository", default=None, help="where the bundled model lives (default: the package's)"
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"the bundled model (default {DEFAULT_MODEL})")
    p.add_argument("--max-batch-size", type=int, default=32, help="the batching servers' max_batch_size")
    p.add_argument("--max-batch-delay-ms", type=float, default=2.0)
    p.add_argument(
        "--threads", type=int, default=0, help="engine (and torch) threads, 0 = `xnornet serve`'s default"
    )
    p.add_argument(
        "--preprocess-threads", type=int, default=0, help="decode threads, 0 = `xnornet serve`'s default"
    )
    for name, what in SERVER_OPTIONS.items():
        p.add_argument(
            "--" + name.replace("_", "-"), type=int, default=None, help=f"{what} (default: `xnornet serve`'s)"
        )
    p.add_argument("--alexnet-width", type=float, default=1.0, help="<1 shrinks the XNOR AlexNet (tests)")
    p.add_argument(
        "--alexnet-edges",
        choices=EDGES,
        default=DEFAULT_EDGES,
        help=f"precision of the AlexNet's conv1 and fc8 (default {DEFAULT_EDGES}, what exporters write)",
    )
    p.add_argument("--alexnet-batch", type=int, default=16, help="the AlexNet servers' max_batch_size")
    p.add_argument("--torch", choices=("auto", "yes", "no"), default="auto", help="run alexnet_torch")
    p.add_argument("--only", action="append", choices=CONFIGS, help="run only these configurations")
    p.add_argument(
        "--breakdown",
        action="store_true",
        help="also run batch32/batch1 with each image decoded once (what batching gives without decode)",
    )
    p.add_argument("--startup-timeout", type=float, default=120.0, help="seconds for a server to start")
    p.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="the servers' event loop (uvicorn's auto: uvloop when it is installed)",
    )
    p.add_argument(
        "--http",
        choices=("auto", "h11", "httptools"),
        default="auto",
        help="the servers' HTTP parser (uvicorn's auto: httptools when it is installed)",
    )
    p.add_argument(
        "--load-generator",
        choices=("auto", "wrk", "httpload"),
        default="auto",
        help="the HTTP client: wrk (C, the least CPU taken from the servers) or httpload (asyncio, "
        "in this process); auto: wrk when it is on PATH",
    )
    p.add_argument("--verbose", action="store_true", help="echo the servers' logs to stderr at the end")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return p


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        return _child(argv[1:])
    args = build_parser().parse_args(argv)
    # Ctrl-C and SIGTERM unwind through the `servers` context manager, which stops the children.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        report = run_benchmark(args)
    except KeyboardInterrupt:
        progress("interrupted; servers stopped")
        return 130
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
