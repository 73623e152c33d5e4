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
from typing import Any, get_args

from pydantic import ValidationError

from .settings import DEFAULT_MODEL, Settings

log = logging.getLogger("xnornet.service")

# Settings field -> help of its flag: --field-name, converted to the field's type.
_SERVE_FLAGS: dict[str, str] = {
    "host": "interface to listen on (default 127.0.0.1)",
    "port": "TCP port (default 8000; 0 picks a free one)",
    "grpc_port": "serve the OIP v2 gRPC service on this port too (default: off)",
    "repository": "model repository <dir>/<name>/<version>/model.xnor (default: the bundled models)",
    "default_model": f"model behind /v1/classify (default {DEFAULT_MODEL})",
    "max_batch_size": "images per engine call at most (default 32)",
    "max_batch_delay_ms": "how long a batch waits to fill (default 2)",
    "queue_capacity": "queued images per model before 503 (default 256)",
    "request_timeout_s": "deadline of one request (default 10)",
    "engine_threads": "engine threads per call, 0 = half of CPUs / workers, at least 1 (default 0)",
    "engine_spin": "polling rounds of the engine's threads before they sleep (default 0: cores shared)",
    "isa": "auto, scalar, avx2 or avx512 (default auto)",
    "preprocess_threads": "decode/preprocess threads, 0 = CPUs",
    "preprocess_nice": "run the decode/preprocess threads this many nice steps lower (default 10; 0 = same)",
    "workers": "server processes sharing the port (default 1); threads 0 = CPUs divided among them",
    "max_body_bytes": "request body limit (default 8 MiB)",
    "max_image_pixels": "decoded image pixel limit (default 40M)",
    "max_activation_mib": "refuse models whose activations for a full batch need more (default 4096)",
    "poll_seconds": "look for new versions every N s (0 = off)",
    "drain_delay_s": "after SIGTERM, keep serving with /readyz 503 this long",
    "grace_s": "after SIGTERM, time for in-flight requests (default 30)",
    "log_level": "debug, info, warning, error",
}


def _flag_type(field: str) -> Any:
    """What argparse converts a Settings field's flag to: the field's type (without None)."""
    annotation = Settings.model_fields[field].annotation
    return next((t for t in get_args(annotation) if t is not type(None)), annotation)


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    if name == "serve":
        for field, text in _SERVE_FLAGS.items():
            flag = "--" + field.replace("_", "-")
            parser.add_argument(flag, dest=field, type=_flag_type(field), default=None, help=text)
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
        field: getattr(args, field) for field in _SERVE_FLAGS if getattr(args, field, None) is not None
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

        return run_workers(settings)
    from .server import make_server

    server = make_server(settings)
    server.run()
    return 0 if server.started else 1


def plan_threads(settings: Settings) -> Settings:
    """Engine and preprocessing threads per worker, unless set: each worker's share of the CPUs
    (CPUs / workers) as preprocessing threads, and half of it, at least 1, as engine threads.

    Half, because the engine is not all of a request: for the XNOR AlexNet the decode, the
    resize and the event loop take about as much CPU as the engine, and they run beside it on
    the same cores. Measured with the service benchmark on 2 cores (README, "Threads"): one
    engine thread instead of two gave the same requests/s and ~10% less CPU per request (the
    second thread's share of each layer costs more in hand-offs than it saves there); the
    preprocessing pool keeps the whole share, since a light model (the bundled one) leaves the
    cores to decoding. Logged, so that an operator sees how the cores are shared."""
    from engine import default_threads

    cpus = default_threads()
    share = max(1, cpus // settings.workers)
    engine = settings.engine_threads or max(1, share // 2)
    pre = settings.preprocess_threads or share
    log.info(
        "%d CPUs: %d worker process(es), each with %d engine thread(s) (polling %d rounds before they "
        "sleep) and %d preprocessing thread(s) at nice +%d%s",
        cpus,
        settings.workers,
        engine,
        settings.engine_spin,
        pre,
        settings.preprocess_nice,
        ""
        if settings.engine_threads and settings.preprocess_threads
        else " (0 = planned: engine CPUs / workers / 2, preprocessing CPUs / workers)",
    )
    return settings.model_copy(update={"engine_threads": engine, "preprocess_threads": pre})


# -- predict ---------------------------------------------------------------------------------
def predict(args: argparse.Namespace) -> int:
    import numpy as np

    import engine

    from .imaging import ImageError, preprocess
    from .postprocess import BadOutput, topk
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
        spec = model.info.input
        t0 = time.perf_counter()
        x = preprocess(data, spec, Settings().max_image_pixels)
        row = np.asarray(model.infer(x[None]))[0].astype(np.float64)
        elapsed = time.perf_counter() - t0
    except (RepositoryError, engine.XnorError, ImageError, OSError) as exc:
        print(f"xnornet predict: {exc}", file=sys.stderr)
        return 1
    try:
        best = topk(row, model.info.output_kind, max(1, min(args.top_k, len(row))))
    except BadOutput as exc:
        print(f"xnornet predict: {exc}", file=sys.stderr)
        return 1
    labels = model.info.labels or tuple(str(i) for i in range(len(row)))
    if args.json:
        print(
            json.dumps(
                {
                    "model": label,
                    "predictions": [{"index": i, "label": labels[i], "probability": p} for i, p in best],
                    "ms": round(elapsed * 1e3, 3),
                }
            )
        )
    else:
        print(f"{args.image}: {label}, {elapsed * 1e3:.1f} ms")
        for i, p in best:
            print(f"  {p:7.2%}  {labels[i]}")
    return 0
