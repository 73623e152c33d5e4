"""The uvicorn server `xnornet serve` runs: make_server() and the shutdown xnornet wants.

On SIGTERM or SIGINT: /readyz turns 503 at once and the server keeps serving for
drain_delay_s (so a load balancer stops routing here), then uvicorn stops listening, waits up
to the grace period for in-flight requests, and the lifespan shutdown finishes every queued
batch. The process then exits 0: stock uvicorn re-raises the signal after a graceful
shutdown, which would end the process with -SIGTERM. A second signal forces the exit.
"""

from __future__ import annotations

import time
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn

from .limits import MAX_HEADER_BYTES, connection_limit
from .runtime import Runtime
from .settings import Settings

if TYPE_CHECKING:
    from .cluster import Cluster
    from .repository import Loader
    from .runtime import Preprocess


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, runtime: Runtime, drain_delay_s: float) -> None:
        super().__init__(config)
        self.runtime = runtime
        self.drain_delay_s = drain_delay_s
        self.draining_since: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.draining_since is not None:
            self.force_exit = True
            self.should_exit = True
            return
        self.runtime.begin_drain()
        self.draining_since = time.monotonic()
        if self.drain_delay_s <= 0:
            self.should_exit = True

    async def on_tick(self, counter: int) -> bool:
        if self.draining_since is not None and time.monotonic() - self.draining_since >= self.drain_delay_s:
            self.should_exit = True
        return await super().on_tick(counter)


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
        # Security defaults: the transport limits, set explicitly rather than inherited.
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
