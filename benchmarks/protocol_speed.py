"""Open Inference Protocol v2 throughput by protocol: gRPC ModelInfer against HTTP /v2 infer,
on one `xnornet serve --grpc-port` process serving the bundled model.

    python -m benchmarks.protocol_speed [--concurrency 16] [--duration 10] [--rounds 3]
                                        [--payload fp32|jpeg] [--json]
    xnornet loadtest --protocols [...]                                   (the same thing)

Configurations, each a closed loop of `--concurrency` requests in flight on keep-alive
connections (HTTP) or one HTTP/2 channel (gRPC), measured one after the other in every round:

  http_json     POST /v2/models/{model}/infer, JSON tensor data, no content type (what the Triton
                HTTP client sends with binary_data=False), JSON outputs
  http_binary   the same with the binary tensor data extension for the input and the output
                (the Triton HTTP client's default)
  grpc          ModelInfer with raw_input_contents (the Triton gRPC client's default)

The payload is one FP32 [1, 1, 28, 28] tensor (`fp32`) or one 640x480 JPEG as a BYTES tensor
(`jpeg`: decoded and preprocessed by the service, as /v1/classify does). Every answer is checked
(status 200 / OK, 10 output values). The load generators are lean on purpose (raw HTTP/1.1 from
benchmarks.httpload, grpc.aio with the service's own message classes), so that on a small machine
they take little CPU from the server they share it with; their CPU time is reported. Ratios
(grpc / http_json, grpc / http_binary) are medians over the rounds; compare ratios, not absolute
numbers, on a shared machine. Progress goes to stderr, the result to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from .child import ChildServer
from .httpload import Conn, percentile, process_cpu_s

MODEL = "fashion-mnist-xnor"
CONFIGS = ("http_json", "http_binary", "grpc")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _payload(kind: str) -> tuple[str, list[int], bytes, Any]:
    """(datatype, shape, binary encoding, JSON data) of the one input tensor."""
    if kind == "jpeg":
        from .images import synthetic_jpeg

        data = synthetic_jpeg()
        return "BYTES", [1], len(data).to_bytes(4, "little") + data, None
    x = np.random.default_rng(0).standard_normal((1, 1, 28, 28)).astype(np.float32)
    return "FP32", list(x.shape), x.tobytes(), x.ravel().tolist()


def http_requests(host: str, port: int, kind: str) -> dict[str, bytes]:
    datatype, shape, raw, data = _payload(kind)
    path = f"/v2/models/{MODEL}/infer"
    out: dict[str, bytes] = {}
    if data is None:  # JSON carries BYTES as base64
        import base64

        data = [base64.b64encode(raw[4:]).decode()]
    body = json.dumps({"inputs": [{"name": "input", "datatype": datatype, "shape": shape, "data": data}]})
    out["http_json"] = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    ).encode()
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "datatype": datatype,
                    "shape": shape,
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": "output", "parameters": {"binary_data": True}}],
        }
    ).encode()
    out["http_binary"] = (
        (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nInference-Header-Content-Length: {len(head)}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(head) + len(raw)}\r\n\r\n"
        ).encode()
        + head
        + raw
    )
    return out


def grpc_request(kind: str) -> Any:
    from service.grpc import messages as pb

    datatype, shape, raw, _ = _payload(kind)
    req = pb.ModelInferRequest(model_name=MODEL)
    req.inputs.add(name="input", datatype=datatype, shape=shape)
    req.raw_input_contents.append(raw)
    return req


async def closed_loop(
    call: Callable[[], Awaitable[bool]], concurrency: int, duration: float, warmup: float, pid: int
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    measuring = stop = False

    async def worker() -> None:
        nonlocal errors
        while not stop:
            t0 = time.perf_counter()
            ok = await call()
            if measuring:
                latencies.append(time.perf_counter() - t0)
                errors += not ok

    tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(warmup)
    cpu0, client0 = process_cpu_s(pid), time.process_time()
    measuring = True
    t0 = time.perf_counter()
    await asyncio.sleep(duration)
    measuring = False
    elapsed = time.perf_counter() - t0
    cpu1, client1 = process_cpu_s(pid), time.process_time()
    stop = True
    await asyncio.gather(*tasks)
    lat = sorted(latencies)
    ok = len(lat) - errors
    return {
        "requests_per_s": round(ok / elapsed, 1),
        "errors": errors,
        "p50_ms": round(percentile(lat, 50) * 1e3, 2),
        "p99_ms": round(percentile(lat, 99) * 1e3, 2),
        "server_cpu_ms_per_request": (
            round((cpu1 - cpu0) / ok * 1e3, 3) if ok and cpu0 is not None and cpu1 is not None else None
        ),
        "client_cpu_ms_per_request": round((client1 - client0) / ok * 1e3, 3) if ok else None,
    }


def _http_call(host: str, port: int, raw: bytes) -> Callable[[], Awaitable[bool]]:
    conns: list[Conn] = []

    async def call() -> bool:
        conn = conns.pop() if conns else Conn(host, port)
        try:
            status, _, _ = await conn.request(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            conn.close()
            return False
        conns.append(conn)
        return status == 200

    return call


def _grpc_call(channel: Any, request: Any) -> Callable[[], Awaitable[bool]]:
    import grpc

    from service.grpc import messages as pb

    infer = channel.unary_unary(
        f"/{pb.SERVICE}/ModelInfer",
        request_serializer=pb.ModelInferRequest.SerializeToString,
        response_deserializer=pb.ModelInferResponse.FromString,
    )

    async def call() -> bool:
        try:
            resp = await infer(request)
        except grpc.aio.AioRpcError:
            return False
        return len(resp.raw_output_contents[0]) == 40

    return call


class Server(ChildServer):
    """`xnornet serve --port 0 --grpc-port 0` as a child process; both ports read from its log."""

    def __init__(self, threads: int, batch_delay_ms: float, capacity: int) -> None:
        self.http: tuple[str, int] | None = None
        self.grpc: str | None = None
        super().__init__([
            sys.executable, "-m", "xnornet", "serve", "--port", "0", "--grpc-port", "0", "--model", MODEL,
            "--engine-threads", str(threads), "--max-batch-delay-ms", str(batch_delay_ms),
            "--queue-capacity", str(capacity), "--request-timeout-s", "600",
        ])  # fmt: skip

    def on_line(self, line: str) -> bool:
        if m := re.search(r"gRPC server listening on (127\.0\.0\.1:\d+)", line):
            self.grpc = m.group(1)
        if m := re.search(r"Uvicorn running on http://(127\.0\.0\.1):(\d+)", line):
            self.http = (m.group(1), int(m.group(2)))
        return self.http is not None

    def wait(self, timeout: float = 120) -> None:
        if not self.started(timeout) or self.http is None or self.grpc is None:
            raise RuntimeError("server did not start:\n" + "".join(self.log[-30:]))


async def measure(srv: Server, args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    import grpc

    assert srv.http is not None and srv.grpc is not None
    host, port = srv.http
    raws = http_requests(host, port, args.payload)
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in CONFIGS}
    async with grpc.aio.insecure_channel(srv.grpc) as channel:
        calls = {
            "http_json": _http_call(host, port, raws["http_json"]),
            "http_binary": _http_call(host, port, raws["http_binary"]),
            "grpc": _grpc_call(channel, grpc_request(args.payload)),
        }
        for r in range(args.rounds):
            for config in CONFIGS:
                res = await closed_loop(
                    calls[config], args.concurrency, args.duration, args.warmup, srv.proc.pid
                )
                results[config].append(res)
                progress(f"round {r + 1}/{args.rounds} {config:12s} {res['requests_per_s']:8.1f} req/s "
                         f"p50 {res['p50_ms']:.2f} ms  errors {res['errors']}")  # fmt: skip
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.protocol_speed", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per configuration and round")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--payload", choices=("fp32", "jpeg"), default="fp32")
    ap.add_argument("--threads", type=int, default=0, help="engine threads in the server (0 = all CPUs)")
    ap.add_argument("--max-batch-delay-ms", type=float, default=2.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    srv = Server(args.threads, args.max_batch_delay_ms, max(256, 4 * args.concurrency))
    try:
        srv.wait()
        progress(
            f"server: http {srv.http}, grpc {srv.grpc}; "
            f"payload {args.payload}, concurrency {args.concurrency}"
        )
        results = asyncio.run(measure(srv, args))
    finally:
        srv.stop(grace=15)
    med = {c: statistics.median(r["requests_per_s"] for r in results[c]) for c in CONFIGS}
    ratios = {
        f"grpc_vs_{c}": statistics.median(g["requests_per_s"] / max(h["requests_per_s"], 1e-9)
                                          for g, h in zip(results["grpc"], results[c], strict=True))
        for c in ("http_json", "http_binary")
    }  # fmt: skip
    out = {
        "payload": args.payload,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "median_requests_per_s": med,
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
        "target": "grpc_vs_http_json >= 1 and grpc_vs_http_binary >= 1",
        "runs": results,
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for c in CONFIGS:
            print(f"{c:12s} {med[c]:9.1f} req/s (median of {args.rounds})")
        for k, v in ratios.items():
            print(f"{k:24s} {v:6.3f}  {'ok' if v >= 1 else 'BELOW TARGET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
