"""`xnornet serve` and `xnornet predict` (subcommands of xnornet/cli.py).

serve: every Settings field is a flag; a flag given wins over its XNORNET_* variable, which
wins over the default. SIGTERM: /readyz turns 503 (for drain_delay_s), the listener closes,
in-flight and queued requests finish within grace_s, and the process exits 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from .limits import MAX_HEADER_BYTES, connection_limit
from .settings import DEFAULT_MODEL, Settings

if TYPE_CHECKING:  # FastAPI stays unimported until a server is made
    from .cluster import Cluster
    from .repository import Loader
    from .runtime import Preprocess

log = logging.getLogger("xnornet.service")

# flag -> (settings field, type, help)
_SERVE_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--host", "host", str, "interface to listen on (default 127.0.0.1)"),
    ("--port", "port", int, "TCP port (default 8000; 0 picks a free one)"),
    ("--grpc-port", "grpc_port", int, "serve the OIP v2 gRPC service on this port too (default: off)"),
    (
        "--repository",
        "repository",
        str,
        "model repository <dir>/<name>/<version>/model.xnor (default: the models bundled in the package)",
    ),
    ("--default-model", "default_model", str, f"model behind /v1/classify (default {DEFAULT_MODEL})"),
    ("--max-batch-size", "max_batch_size", int, "images per engine call at most (default 32)"),
    ("--max-batch-delay-ms", "max_batch_delay_ms", float, "how long a batch waits to fill (default 2)"),
    ("--queue-capacity", "queue_capacity", int, "queued images per model before 503 (default 256)"),
    ("--request-timeout-s", "request_timeout_s", float, "deadline of one request (default 10)"),
    ("--engine-threads", "engine_threads", int, "engine threads per call, 0 = all CPUs (default 0)"),
    ("--isa", "isa", str, "auto, scalar, avx2 or avx512 (default auto)"),
    ("--preprocess-threads", "preprocess_threads", int, "decode/preprocess threads, 0 = CPUs"),
    (
        "--workers",
        "workers",
        int,
        "server processes sharing the port (default 1); threads 0 = CPUs divided among them",
    ),
    ("--max-body-bytes", "max_body_bytes", int, "request body limit (default 8 MiB)"),
    ("--max-image-pixels", "max_image_pixels", int, "decoded image pixel limit (default 40M)"),
    (
        "--max-activation-mib",
        "max_activation_mib",
        int,
        "refuse models whose activations for a full batch need more (default 4096)",
    ),
    ("--poll-seconds", "poll_seconds", float, "look for new versions every N s (0 = off)"),
    ("--drain-delay-s", "drain_delay_s", float, "after SIGTERM, keep serving with /readyz 503 this long"),
    ("--grace-s", "grace_s", float, "after SIGTERM, time for in-flight requests (default 30)"),
    ("--log-level", "log_level", str, "debug, info, warning, error"),
]


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    if name == "serve":
        for flag, dest, typ, text in _SERVE_FLAGS:
            parser.add_argument(flag, dest=dest, type=typ, default=None, help=text)
        parser.add_argument(
            "--model",
            dest="models",
            action="append",
            default=None,
            help="load this model at start (repeatable; default: every model on disk)",
        )
        parser.add_argument(
            "--admin-token-file",
            default=None,
            help="read the admin token from this file (or set XNORNET_ADMIN_TOKEN)",
        )
    elif name == "predict":
        parser.add_argument("image", help="an image file (JPEG, PNG, WebP, GIF, BMP)")
        parser.add_argument(
            "--model",
            default=None,
            help=f"a model name in the repository, or a path to a .xnor file (default {DEFAULT_MODEL})",
        )
        parser.add_argument("--version", type=int, default=None, help="model version (default: highest)")
        parser.add_argument("--repository", default=None, help="model repository (default: bundled models)")
        parser.add_argument("--top-k", type=int, default=5)
        parser.add_argument("--threads", type=int, default=0, help="engine threads (0 = all CPUs)")
        parser.add_argument("--json", action="store_true", help="print JSON")


def run(name: str, args: argparse.Namespace) -> int:
    return serve(args) if name == "serve" else predict(args)


# -- serve -----------------------------------------------------------------------------------
def _settings_from(args: argparse.Namespace) -> Settings:
    given: dict[str, Any] = {
        dest: getattr(args, dest) for _, dest, _, _ in _SERVE_FLAGS if getattr(args, dest, None) is not None
    }
    if args.models:
        given["models"] = args.models
    if args.admin_token_file:
        given["admin_token"] = Path(args.admin_token_file).read_text().strip()
    return Settings(**given)


def serve(args: argparse.Namespace) -> int:
    try:
        settings = _settings_from(args)
    except (ValidationError, OSError) as exc:
        print(f"xnornet serve: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.workers > 1 and settings.grpc_port == 0:
        print(
            "xnornet serve: --workers needs a fixed --grpc-port (0 would differ per worker)", file=sys.stderr
        )
        return 2
    settings = plan_threads(settings)
    if settings.workers > 1:
        from .workers import run as run_workers

        return run_workers(settings, make_server)
    server = make_server(settings)
    server.run()
    return 0 if server.started else 1


def plan_threads(settings: Settings) -> Settings:
    """Engine and preprocessing threads per worker: the CPUs divided among the workers, unless
    set. Logged, so that an operator sees how the cores are shared."""
    from .runtime import cpu_count

    cpus = cpu_count()
    share = max(1, cpus // settings.workers)
    engine = settings.engine_threads or share
    pre = settings.preprocess_threads or share
    log.info(
        "%d CPUs: %d worker process(es), each with %d engine thread(s) and %d preprocessing thread(s)%s",
        cpus,
        settings.workers,
        engine,
        pre,
        "" if settings.engine_threads and settings.preprocess_threads else " (0 = CPUs / workers)",
    )
    return settings.model_copy(update={"engine_threads": engine, "preprocess_threads": pre})


KEEP_ALIVE_S = 5


def http_protocol() -> Any:
    """httptools (C parser) with our head limit when it is installed, else h11 (pure Python)."""
    try:
        from .http_protocol import HeadLimitedHttpToolsProtocol
    except ImportError:  # httptools missing: uvicorn's h11 protocol, bounded by h11's own setting
        return "h11"
    return HeadLimitedHttpToolsProtocol


def make_server(
    settings: Settings,
    loader: Loader | None = None,
    preprocess: Preprocess | None = None,
    cluster: Cluster | None = None,
) -> Any:
    """The uvicorn server `xnornet serve` runs (the service benchmark runs it with another
    `loader`, e.g. PyTorch, to compare engines behind the very same service, or another
    `preprocess`; see create_app). `cluster`: one worker of `--workers N` (service/workers.py)."""
    import uvicorn

    from .app import create_app
    from .server import DrainingServer

    app = create_app(settings, loader=loader, preprocess=preprocess, cluster=cluster)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=max(1, int(settings.grace_s + 0.999)),
        access_log=False,
        lifespan="on",
        server_header=False,
        # Issue 5 (security defaults): the transport limits, set explicitly rather than inherited.
        # The request line plus headers may take at most 16 KiB: a longer head is refused (431)
        # before any of the app runs, by service/http_protocol.py with httptools, by h11's own
        # setting without it. Bodies are limited by the app (service/limits.py).
        http=http_protocol(),
        loop="auto",  # uvloop when installed (a dependency on CPython/Linux)
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        # Idle keep-alive connections are closed after 5 s (uvicorn's default, made explicit), so
        # idle sockets cannot pin file descriptors.
        timeout_keep_alive=KEEP_ALIVE_S,
        # A last-resort cap on open connections + in-flight tasks; past it uvicorn answers a bare
        # 503 at once. It sits well above what the bounded queue admits (the app's own 503 with
        # Retry-After answers first), so it only bites on a connection flood.
        limit_concurrency=connection_limit(settings),
        # Nothing here reads the client address, so no layer rewrites it from X-Forwarded-For.
        proxy_headers=False,
    )
    return DrainingServer(config, app.state.runtime, settings.drain_delay_s)


# -- predict ---------------------------------------------------------------------------------
def predict(args: argparse.Namespace) -> int:
    import numpy as np

    import engine

    from .imaging import ImageError, InputSpec, preprocess
    from .repository import Repository, RepositoryError

    target = args.model or DEFAULT_MODEL
    try:
        if target.endswith(".xnor") or "/" in target:
            model = engine.Model.load(target, threads=args.threads)
            label = target
        else:
            repo = Repository(
                Path(args.repository) if args.repository else Settings().repository,
                lambda data, src: engine.Model.from_bytes(data, threads=args.threads),
            )
            version = args.version if args.version is not None else repo.wanted_version(target)
            model = engine.Model.load(repo.model_path(target, version), threads=args.threads)
            label = f"{target} version {version}"
        data = Path(args.image).read_bytes()
        spec = InputSpec.from_info(model.info)
        t0 = time.perf_counter()
        x = preprocess(data, spec, Settings().max_image_pixels)
        row = np.asarray(model.infer(x[None]))[0].astype(np.float64)
        elapsed = time.perf_counter() - t0
    except (RepositoryError, engine.XnorError, ImageError, OSError) as exc:
        print(f"xnornet predict: {exc}", file=sys.stderr)
        return 1
    if model.info.output_kind == "probabilities":
        probs = row / row.sum()
    else:
        probs = np.exp(row - row.max())
        probs /= probs.sum()
    labels = model.info.labels or tuple(str(i) for i in range(len(row)))
    order = np.argsort(-probs, kind="stable")[: max(1, min(args.top_k, len(row)))]
    if args.json:
        print(
            json.dumps(
                {
                    "model": label,
                    "predictions": [
                        {"index": int(i), "label": labels[i], "probability": float(probs[i])} for i in order
                    ],
                    "ms": round(elapsed * 1e3, 3),
                }
            )
        )
    else:
        print(f"{args.image}: {label}, {elapsed * 1e3:.1f} ms")
        for i in order:
            print(f"  {probs[i]:7.2%}  {labels[i]}")
    return 0
