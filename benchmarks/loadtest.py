"""Load-test a running server on loopback: `xnornet loadtest`.

Closed-loop load on a running server, or the same work done in-process (benchmarks/httpload.py
does the work).

    xnornet loadtest --url http://127.0.0.1:8000 --concurrency 32 --duration 10 --image cat.jpg --json
    xnornet loadtest --direct --model-file model.xnor --image cat.jpg --duration 10
    xnornet loadtest --compare [--duration 15] [--json]
    xnornet loadtest --protocols [--concurrency 16] [--duration 10] [--json]

--compare runs the whole service benchmark instead (servers started here, see
benchmarks/service_speed.py); --protocols compares gRPC with HTTP /v2 on one server
(benchmarks/protocol_speed.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from . import httpload


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server (loopback)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of measurement")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before measuring")
    parser.add_argument(
        "--image", default=None, help="the image every request sends (required but with --compare)"
    )
    parser.add_argument("--model", default=None, help="model name (default: the server's default model)")
    parser.add_argument(
        "--direct",
        action="store_true",
        help="no HTTP: decode + preprocess + engine in a loop in this process",
    )
    parser.add_argument("--model-file", default=None, help="with --direct: the .xnor file")
    parser.add_argument("--threads", type=int, default=0, help="with --direct: engine threads (0 = all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="run the service benchmark (python -m benchmarks.service_speed; its options: --help there)",
    )
    parser.add_argument(
        "--protocols",
        action="store_true",
        help="gRPC ModelInfer vs HTTP /v2 infer (python -m benchmarks.protocol_speed; --help there)",
    )


def run(name: str, args: argparse.Namespace) -> int:
    if args.protocols:
        from . import protocol_speed

        argv = ["--duration", str(args.duration), "--warmup", str(args.warmup)]
        argv += ["--concurrency", str(args.concurrency)] + (["--json"] if args.json else [])
        return protocol_speed.main(argv)
    if args.compare:
        from . import service_speed

        argv = ["--duration", str(args.duration), "--warmup", str(args.warmup)]
        argv += ["--concurrency", str(args.concurrency)]
        argv += (["--image", args.image] if args.image else []) + (["--json"] if args.json else [])
        return service_speed.main(argv)
    if not args.image:
        print("xnornet loadtest: --image is required", file=sys.stderr)
        return 2
    image = Path(args.image).read_bytes()
    if args.direct:
        if not args.model_file:
            print("xnornet loadtest: --direct needs --model-file", file=sys.stderr)
            return 2
        report = httpload.direct(Path(args.model_file), image, args.duration, args.threads)
    else:
        path = f"/v1/models/{args.model}/classify" if args.model else "/v1/classify"
        load = httpload.Load(args.url, path, image, args.concurrency, args.duration, args.warmup)
        report = asyncio.run(httpload.load(load))
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>18}: {value}")
    return 0 if report.get("errors", 0) == 0 else 1
