"""The running service's state: settings, repository, one batcher per model, metrics,
the preprocessing pool, and the lifecycle (starting -> ready -> draining).

The routers reach it through the `RuntimeDep` dependency; create_app's lifespan starts
and stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from . import imaging, os_threads
from .batcher import Batcher, Item
from .cluster import READY, Cluster
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
        model: EngineModel = engine.Model.from_bytes(
            data, threads=settings.engine_threads, isa=settings.isa, spin=settings.engine_spin
        )
        return model

    return load


def _cpus() -> int:
    """CPUs this process may use, as the engine counts them (affinity mask and cgroup quota)."""
    import engine

    return engine.default_threads()


class Runtime:
    def __init__(
        self,
        settings: Settings,
        loader: Loader | None = None,
        preprocess: Preprocess | None = None,
        cluster: Cluster | None = None,
    ) -> None:
        self.settings = settings
        # What the preprocessing pool runs per request; a benchmark may wrap it (e.g. a decode cache).
        self.preprocess: Preprocess = preprocess or imaging.preprocess
        # One of the worker processes of `xnornet serve --workers N` (service/workers.py), or None.
        self.cluster = cluster
        self.metrics = Metrics(Cluster.metrics_dir(cluster.root) if cluster else None)
        self._ops_applied = 0  # the cluster's admin operations applied here
        self._ops_lock = asyncio.Lock()
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
        threads = settings.preprocess_threads or _cpus()
        self.preprocess_pool = ThreadPoolExecutor(
            max_workers=threads,
            thread_name_prefix="preprocess",
            initializer=os_threads.start_decode_thread,
            initargs=(settings.preprocess_nice,),
        )
        # Wall-clock time of each model's last engine call, in ms (the statistics extension).
        self.last_inference_ms: dict[str, int] = {}
        self.state = "starting"
        self.required: set[str] = set()
        self._poll_task: asyncio.Task[None] | None = None
        self._failed: dict[str, tuple[int, int, int]] = {}  # name -> (version, size, mtime) that failed

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.cluster is not None:
            # Before the log is read below: an operation appended after that read signals us.
            loop.add_signal_handler(signal.SIGUSR1, lambda: loop.create_task(self.apply_cluster_ops()))
        names = list(self.settings.models) or self.repo.names_on_disk()
        if not names:
            log.warning("no models in %s", self.repo.root)
        self.required = set(names)
        async with self._ops_lock:  # no operation of the cluster's log overtakes the first loads
            for name in names:
                try:
                    await self.load(name, self.repo.pinned.get(name), pin=False)
                except RepositoryError as exc:
                    log.error("could not load %s at start: %s", name, exc)
            if self.cluster is not None:
                await self._apply_new_ops()
        if self.settings.poll_seconds > 0:
            self._poll_task = loop.create_task(self._poll(), name="repository-poll")
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload_all()))
        self.state = "ready"
        self._publish()

    def begin_drain(self) -> None:
        """SIGTERM: /readyz answers 503 from now on; requests are still served."""
        if self.state != "stopped":
            self.state = "draining"
            self._publish()

    async def stop(self) -> None:
        """Finish every queued request, then release the engine and the threads."""
        self.begin_drain()
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            if self.cluster is not None:
                # The supervisor may still pass these on; stopping, a worker ignores them.
                asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR1)
                signal.signal(signal.SIGUSR1, signal.SIG_IGN)
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
        await asyncio.gather(*(b.close() for b in self.batchers.values()))
        self.preprocess_pool.shutdown(wait=True)
        for name in list(self.repo.served()):
            self.repo.unload(name)
        self.state = "stopped"

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready: serving every required model and not draining; with workers, every worker."""
        served = self.repo.served()
        missing = sorted(self.required - set(served))
        ok = self.state == "ready" and not missing
        workers: dict[str, int] | None = None
        if self.cluster is not None:
            ready = sum(s == READY for s in self.cluster.states().values())
            workers = {"ready": ready, "total": self.cluster.workers}
            ok = ok and ready == self.cluster.workers
        body: dict[str, Any] = {
            "status": "ready" if ok else self.state if self.state != "ready" else "loading",
            "models": {n: mv.version for n, mv in sorted(served.items())},
            "missing": missing,
        }
        if workers is not None:
            body["workers"] = workers
        return ok, body

    def _publish(self) -> None:
        """This worker's own readiness, for the other workers' /readyz."""
        if self.cluster is not None:
            own = self.state == "ready" and self.required <= set(self.repo.served())
            self.cluster.publish(own)

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
        self._publish()
        return mv

    async def unload(self, name: str) -> ModelVersion | None:
        old = self.repo.unload(name)
        self.required.discard(name)
        self.metrics.set_served(name, None)
        self._publish()
        return old

    # -- admin operations: in every worker -------------------------------------------------
    async def admin_load(self, name: str, version: int | None) -> ModelVersion:
        """The admin API's load; with workers, every worker loads the same version."""
        if self.cluster is None:
            return await self.load(name, version)
        async with self._cluster_exclusive():
            mv = await self.load(name, version)
            await self._append_op({"op": "load", "name": name, "version": version, "loaded": mv.version})
        self.cluster.notify()
        return mv

    async def admin_unload(self, name: str) -> ModelVersion | None:
        """The admin API's unload; with workers, every worker stops serving the model."""
        if self.cluster is None:
            return await self.unload(name)
        async with self._cluster_exclusive():
            old = await self.unload(name)
            if old is not None:
                await self._append_op({"op": "unload", "name": name})
        if old is not None:
            self.cluster.notify()
        return old

    @contextlib.asynccontextmanager
    async def _cluster_exclusive(self) -> AsyncIterator[None]:
        """One admin operation at a time in the cluster, after every earlier one took effect
        here, so this worker applies the operations in the log's order too (service/cluster.py)."""
        assert self.cluster is not None
        async with self._ops_lock:
            with self.cluster.lock_file() as fh:
                await asyncio.to_thread(fcntl.flock, fh, fcntl.LOCK_EX)
                await self._apply_new_ops()
                yield  # closing the file releases the flock

    async def _append_op(self, op: dict[str, Any]) -> None:
        assert self.cluster is not None
        self._ops_applied = await asyncio.to_thread(self.cluster.append, op)

    async def apply_cluster_ops(self) -> None:
        """SIGUSR1 from the supervisor: another worker appended an operation."""
        async with self._ops_lock:
            await self._apply_new_ops()

    async def _apply_new_ops(self) -> None:
        assert self.cluster is not None
        for op in await asyncio.to_thread(self.cluster.read_ops):
            if op["seq"] <= self._ops_applied:
                continue
            name = op["name"]
            try:
                if op["op"] == "load":
                    await self._apply_load(name, op["version"], op["loaded"])
                elif op["op"] == "unload":
                    await self.unload(name)
            except RepositoryError as exc:
                log.error("worker %d could not apply %s: %s", self.cluster.index, op, exc)
            self._ops_applied = op["seq"]

    async def _apply_load(self, name: str, requested: int | None, loaded: int) -> None:
        if requested is None:
            self.repo.pinned.pop(name, None)
        else:
            self.repo.pinned[name] = requested
        served = self.repo.served().get(name)
        if served is not None and served.version == loaded:
            path = self.repo.model_path(name, loaded)
            if served.sha256 == self.repo.sha256_of(path):
                self.required.add(name)
                return  # this very file is served already (the first loads of a new worker)
        await self.load(name, loaded, pin=False)

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
                m.child(m.batch_size, name).observe(len(items))
                m.child(m.inference, name).observe(seconds)
                for it in items:
                    m.child(m.queue_wait, name).observe(max(0.0, it.started - it.enqueued))

            b = Batcher(
                name,
                _run_batch,
                max_batch_size=s.max_batch_size,
                max_delay_s=s.max_batch_delay_s,
                capacity=s.queue_capacity,
                on_batch=on_batch,
                on_depth=lambda d: m.child(m.queue_depth, name).set(d),
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
