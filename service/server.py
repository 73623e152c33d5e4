"""uvicorn's Server with the shutdown xnornet wants.

On SIGTERM or SIGINT: /readyz turns 503 at once and the server keeps serving for
drain_delay_s (so a load balancer stops routing here), then uvicorn stops listening, waits up
to the grace period for in-flight requests, and the lifespan shutdown finishes every queued
batch. The process then exits 0: stock uvicorn re-raises the signal after a graceful
shutdown, which would end the process with -SIGTERM. A second signal forces the exit.
"""

from __future__ import annotations

import time
from types import FrameType

import uvicorn

from .runtime import Runtime


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
