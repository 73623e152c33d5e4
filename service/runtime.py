"""The running service's state: settings, repository, one batcher per model, metrics,
the preprocessing pool, and the lifecycle (starting -> ready -> draining).

The routers reach it through the `RuntimeDep` dependency; create_app's lifespan starts
and stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from . import imaging
from .batcher import Batcher, Item
from .metrics import Metrics
from .repository import EngineModel, Loader, ModelVersion, Repository, RepositoryError
from .settings import Settings

log = logging.getLogger("xnornet.service")

# bytes, the model's input spec, the pixel limit -> the model's input tensor (imaging.preprocess).
Preprocess = Callable[[bytes, imaging.InputSpec, int], np.ndarray]


def engine_loader(settings: Settings) -> Loader:
    """Load model bytes with the C engine (imported here so the rest can be tested without it)."""
    import engine

    def load(data: bytes, source: str) -> EngineModel:
        model: EngineModel = engine.Model.from_bytes(data, threads=settings.engine_threads, isa=settings.isa)
        return model

    return load


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class Runtime:
    def __init__(
        self, settings: Settings, loader: Loader | None = None, preprocess: Preprocess | None = None
    ) -> None:
        self.settings = settings
        # What the preprocessing pool runs per request; a benchmark may wrap it (e.g. a decode cache).
        self.preprocess: Preprocess = preprocess or imaging.preprocess
        self.metrics = Metrics()
        self.repo = Repository(
            settings.repository,
            loader or engine_loader(settings),
            warmup_batch=settings.max_batch_size,
            pinned=settings.versions,
            max_activation_bytes=settings.max_activation_mib << 20,
        )
        self.batchers: dict[str, Batcher] = {}
        # Images admitted to decoding and not yet queued, per model (inference.preprocess_image).
        self.decoding: dict[str, int] = {}
        threads = settings.preprocess_threads or cpu_count()
        self.preprocess_pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="preprocess")
        # Wall-clock time of each model's last engine call, in ms (the statistics extension).
        self.last_inference_ms: dict[str, int] = {}
        self.state = "starting"
        self.required: set[str] = set()
        self._poll_task: asyncio.Task[None] | None = None
        self._failed: dict[str, tuple[int, int, int]] = {}  # name -> (version, size, mtime) that failed

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        names = list(self.settings.models) or self.repo.names_on_disk()
        if not names:
            log.warning("no models in %s", self.repo.root)
        self.required = set(names)
        for name in names:
            try:
                await self.load(name, self.repo.pinned.get(name), pin=False)
            except RepositoryError as exc:
                log.error("could not load %s at start: %s", name, exc)
        loop = asyncio.get_running_loop()
        if self.settings.poll_seconds > 0:
            self._poll_task = loop.create_task(self._poll(), name="repository-poll")
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload_all()))
        self.state = "ready"

    def begin_drain(self) -> None:
        """SIGTERM: /readyz answers 503 from now on; requests are still served."""
        if self.state != "stopped":
            self.state = "draining"

    async def stop(self) -> None:
        """Finish every queued request, then release the engine and the threads."""
        self.begin_drain()
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        await asyncio.gather(*(b.close() for b in self.batchers.values()))
        self.preprocess_pool.shutdown(wait=True)
        for name in list(self.repo.served()):
            self.repo.unload(name)
        self.state = "stopped"

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        served = self.repo.served()
        missing = sorted(self.required - set(served))
        ok = self.state == "ready" and not missing
        return ok, {
            "status": "ready" if ok else self.state if self.state != "ready" else "loading",
            "models": {n: mv.version for n, mv in sorted(served.items())},
            "missing": missing,
        }

    # -- loading ---------------------------------------------------------------------------
    async def load(self, name: str, version: int | None = None, *, pin: bool = True) -> ModelVersion:
        """Load (validate + warm up) and serve a version; `pin` records an explicit version choice."""
        if pin:
            if version is None:
                self.repo.pinned.pop(name, None)
            else:
                self.repo.pinned[name] = version
        try:
            mv = await asyncio.to_thread(self.repo.load, name, version)
        except RepositoryError:
            self.metrics.model_loads.labels(name, "error").inc()
            raise
        self.metrics.model_loads.labels(name, "ok").inc()
        self.metrics.set_served(name, mv.version, mv.sha256, mv.isa)
        self._ensure_batcher(name)
        self.required.add(name)
        return mv

    async def unload(self, name: str) -> ModelVersion | None:
        old = self.repo.unload(name)
        self.required.discard(name)
        self.metrics.set_served(name, None)
        return old

    async def reload_all(self) -> None:
        """SIGHUP and polling: serve the wanted version of every model on disk or served."""
        names = set(self.repo.names_on_disk()) | set(self.repo.served())
        if self.settings.models:
            names &= set(self.settings.models) | set(self.repo.served())
        for name in sorted(names):
            await self._refresh(name)

    async def _refresh(self, name: str) -> None:
        served = self.repo.served().get(name)
        try:
            want = self.repo.wanted_version(name)
            path = self.repo.model_path(name, want)
            st = path.stat()
        except (RepositoryError, OSError):
            return
        if served is not None and served.version == want and served.sha256 == self.repo.sha256_of(path):
            return
        stamp = (want, st.st_size, st.st_mtime_ns)
        if self._failed.get(name) == stamp:
            return  # this exact file was rejected already; retry only when it changes
        try:
            await self.load(name, want, pin=False)
            self._failed.pop(name, None)
        except RepositoryError:
            self._failed[name] = stamp

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_seconds)
            try:
                await self.reload_all()
            except Exception:  # keep polling whatever happened
                log.exception("repository poll failed")

    # -- inference -------------------------------------------------------------------------
    def _ensure_batcher(self, name: str) -> Batcher:
        b = self.batchers.get(name)
        if b is None:
            s = self.settings
            m = self.metrics

            def on_batch(items: Sequence[Item], seconds: float) -> None:
                self.last_inference_ms[name] = int(time.time() * 1000)
                m.batch_size.labels(name).observe(len(items))
                m.inference.labels(name).observe(seconds)
                for it in items:
                    m.queue_wait.labels(name).observe(max(0.0, it.started - it.enqueued))

            b = Batcher(
                name,
                _run_batch,
                max_batch_size=s.max_batch_size,
                max_delay_s=s.max_batch_delay_s,
                capacity=s.queue_capacity,
                on_batch=on_batch,
                on_depth=lambda d: m.queue_depth.labels(name).set(d),
            )
            b.start()
            self.batchers[name] = b
        return b

    def batcher(self, name: str) -> Batcher:
        return self._ensure_batcher(name)

    def queue_full(self, name: str) -> bool:
        """Admission control: the images being decoded plus those queued for `name` fill the
        capacity. Never creates a batcher (callers may pass any name a client sent)."""
        b = self.batchers.get(name)
        depth = b.depth if b is not None else 0
        return self.decoding.get(name, 0) + depth >= self.settings.queue_capacity


def _run_batch(version: ModelVersion, x: np.ndarray) -> np.ndarray:
    """On the batcher's worker thread; the requests' leases keep version.model alive."""
    model = version.model
    if model is None:
        raise RuntimeError(f"{version.name} version {version.version} was freed while leased")
    t0 = time.perf_counter()
    out = np.asarray(model.infer(x), dtype=np.float32)
    version.meta["last_batch_s"] = time.perf_counter() - t0
    return out
