"""The model repository: versions on disk, validated loading, atomic swap, leases.

Layout: <root>/<name>/<version>/model.xnor, integer versions; the highest is served unless
one is pinned. A version is served only after the engine accepted the file and a warm-up
inference returned finite outputs of the right shape; then it replaces the old version in
one assignment under a lock. Requests hold a lease on the version they were preprocessed
for, so a batch already formed finishes on the old version; the old model is released
(and its C memory freed) when its last lease ends.

Only names matching NAME_RE and integer versions are accepted, never paths, and the file
must resolve inside the repository (no "..", no symlink leading out of it).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from engine.input_spec import InputSpec
from engine.layout import CARD_FILE, MODEL_FILE

from .errors import ApiError

log = logging.getLogger("xnornet.repository")

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
VERSION_RE = re.compile(r"^[0-9]{1,9}$")
MAX_MODEL_BYTES = 2 << 30
MAX_CARD_BYTES = 256 << 10


class EngineModel(Protocol):
    """What the service needs of engine.Model (tests pass fakes with the same shape)."""

    info: Any
    isa: str
    threads: int

    def infer(self, x: Any) -> np.ndarray: ...


# bytes of a model file -> a loaded model; raises on a bad file.
Loader = Callable[[bytes, str], EngineModel]


class RepositoryError(ApiError):
    code = "repository_error"
    status = 422


class InvalidName(RepositoryError):
    code, status = "invalid_name", 422


class NotOnDisk(RepositoryError):
    code, status = "model_not_found", 404


class OutsideRepository(RepositoryError):
    code, status = "outside_repository", 422


class LoadFailed(RepositoryError):
    code, status = "model_load_failed", 422


class NotServed(RepositoryError):
    code, status = "model_not_loaded", 404


class ModelNotFound(NotServed):
    """No served version answers to this name (invalid, unknown, or on disk but not loaded):
    what an inference request for it gets."""

    code = "model_not_found"


@dataclass(eq=False)
class ModelVersion:
    name: str
    version: int
    path: str
    sha256: str
    model: EngineModel | None
    spec: InputSpec
    labels: tuple[str, ...]
    output_kind: str
    output_size: int
    isa: str
    loaded_at: float  # wall clock, for humans
    load_seconds: float
    leases: int = 0
    retired: bool = False
    freed: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> dict[str, Any]:
        """dataset (None when no card names it), classes, summary: from the model card, else
        only what the file says (its number of classes)."""
        raw = self.card.get("task")
        task: dict[str, Any] = raw if isinstance(raw, dict) else {}
        dataset = task.get("dataset") if isinstance(task.get("dataset"), str) else None
        summary = task.get("summary") if isinstance(task.get("summary"), str) else None
        return {
            "dataset": dataset,
            "classes": self.output_size,
            "summary": summary or f"{self.output_size} classes",
        }

    def describe(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "sha256": self.sha256,
            "isa": self.isa,
            "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at)),
            "load_ms": round(self.load_seconds * 1000.0, 3),
            "inflight": self.leases,
            "input_shape": [self.spec.channels, self.spec.height, self.spec.width],
            "classes": self.output_size,
            "output_kind": self.output_kind,
        }


class Lease:
    """Keeps one ModelVersion's model alive; release() is idempotent."""

    def __init__(self, repo: Repository, mv: ModelVersion) -> None:
        self._repo = repo
        self.version = mv
        self._held = True

    @property
    def model(self) -> EngineModel:
        assert self.version.model is not None  # a held lease keeps it
        return self.version.model

    def release(self) -> None:
        if self._held:
            self._held = False
            self._repo._release(self.version)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise InvalidName(
            f"invalid model name {name!r}: letters, digits, '_', '-', '.', starting with a "
            "letter or digit, at most 128 characters"
        )
    return name


class Repository:
    def __init__(
        self,
        root: Path | str,
        loader: Loader,
        *,
        warmup_batch: int = 1,
        pinned: dict[str, int] | None = None,
        max_activation_bytes: int | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self._loader = loader
        self._warmup_batch = max(1, warmup_batch)
        self._max_activation_bytes = max_activation_bytes
        self.pinned: dict[str, int] = dict(pinned or {})
        self._lock = threading.Lock()  # guards _served and every lease count
        self._load_locks: dict[str, threading.Lock] = {}
        self._served: dict[str, ModelVersion] = {}
        self._sha_cache: dict[tuple[str, int, int], str] = {}
        self.last_error: dict[str, str] = {}

    # -- what is on disk -------------------------------------------------------------------
    def names_on_disk(self) -> list[str]:
        try:
            entries = sorted(os.listdir(self.root))
        except OSError:
            return []
        return [
            n
            for n in entries
            if NAME_RE.fullmatch(n) and (self.root / n).is_dir() and self.versions_on_disk(n)
        ]

    def versions_on_disk(self, name: str) -> list[int]:
        check_name(name)
        try:
            entries = os.listdir(self.root / name)
        except OSError:
            return []
        out = []
        for v in entries:
            if VERSION_RE.fullmatch(v):
                try:
                    self.model_path(name, int(v))
                except RepositoryError:
                    continue
                out.append(int(v))
        return sorted(out)

    def model_path(self, name: str, version: int) -> Path:
        """The real path of a version's file, guaranteed inside the repository."""
        check_name(name)
        if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version < 10**9:
            raise InvalidName(f"invalid version {version!r}: an integer 0..999999999")
        candidate = self.root / name / str(version) / MODEL_FILE
        try:
            real = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            raise NotOnDisk(f"model {name!r} has no version {version} on disk") from None
        if not real.is_relative_to(self.root):
            raise OutsideRepository(f"model {name!r} version {version} resolves outside the repository")
        if not real.is_file():
            raise NotOnDisk(f"model {name!r} version {version} is not a regular file")
        return real

    def sha256_of(self, path: Path) -> str:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in self._sha_cache:
            self._sha_cache[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        return self._sha_cache[key]

    # -- loading ---------------------------------------------------------------------------
    def wanted_version(self, name: str) -> int:
        """The pinned version, else the highest on disk."""
        if name in self.pinned:
            return self.pinned[name]
        versions = self.versions_on_disk(name)
        if not versions:
            raise NotOnDisk(f"model {name!r} has no versions in the repository")
        return versions[-1]

    def load(self, name: str, version: int | None = None) -> ModelVersion:
        """Validate, warm up and serve a version (blocking: call it off the event loop).

        Raises RepositoryError; on any failure the version served before keeps serving.
        """
        check_name(name)
        with self._lock:
            load_lock = self._load_locks.setdefault(name, threading.Lock())
        with load_lock:  # one load per model at a time; loads of other models run in parallel
            if version is None:
                version = self.wanted_version(name)
            path = self.model_path(name, version)
            try:
                mv = self._build(name, version, path)
            except RepositoryError as exc:
                self.last_error[name] = str(exc)
                log.error("rejected %s version %d: %s", name, version, exc)
                raise
            with self._lock:
                old = self._served.get(name)
                self._served[name] = mv
                if old is not None:
                    self._retire(old)
            self.last_error.pop(name, None)
            log.info(
                "serving %s version %d (sha256 %s, %.1f ms to load and warm up)",
                name,
                version,
                mv.sha256[:12],
                mv.load_seconds * 1000,
            )
            return mv

    def _check_activations(self, name: str, version: int, info: Any) -> None:
        """Before the warm-up allocates them: a small file may declare huge layers (SECURITY.md).
        Loaders without the estimate (tests' fakes, the PyTorch twin) are not checked."""
        per_image = getattr(info, "activation_bytes", None)
        limit = self._max_activation_bytes
        if limit is None or per_image is None:
            return
        need = int(per_image) * self._warmup_batch
        if need > limit:
            raise LoadFailed(
                f"{name} version {version}: its activations for a batch of {self._warmup_batch} "
                f"need {need / 2**20:.0f} MiB, over the limit of {limit / 2**20:.0f} MiB "
                "(XNORNET_MAX_ACTIVATION_MIB)"
            )

    def _build(self, name: str, version: int, path: Path) -> ModelVersion:
        t0 = time.perf_counter()
        data = _read_confined(path)
        sha = hashlib.sha256(data).hexdigest()
        try:
            model = self._loader(data, str(path))
        except Exception as exc:  # the engine's ModelFormatError and friends
            raise LoadFailed(
                f"{name} version {version}: the engine rejected the file: {type(exc).__name__}: {exc}"
            ) from None
        info = model.info
        spec = info.input
        labels = tuple(info.labels) or tuple(str(i) for i in range(int(info.output_size)))
        if len(labels) != int(info.output_size):
            raise LoadFailed(f"{name} version {version}: {len(labels)} labels for {info.output_size} outputs")
        self._check_activations(name, version, info)
        try:
            for n in sorted({1, self._warmup_batch}):
                out = np.asarray(
                    model.infer(np.zeros((n, spec.channels, spec.height, spec.width), np.float32))
                )
                if out.shape != (n, int(info.output_size)) or not np.all(np.isfinite(out)):
                    raise ValueError(f"warm-up output of shape {out.shape} is wrong or not finite")
        except Exception as exc:
            raise LoadFailed(f"{name} version {version}: warm-up failed: {exc}") from None
        return ModelVersion(
            name=name,
            version=version,
            path=str(path),
            sha256=sha,
            model=model,
            spec=spec,
            labels=labels,
            output_kind=str(info.output_kind),
            output_size=int(info.output_size),
            isa=str(getattr(model, "isa", "")),
            loaded_at=time.time(),
            load_seconds=time.perf_counter() - t0,
            card=_read_card(path.parent / CARD_FILE),
        )

    def unload(self, name: str) -> ModelVersion | None:
        check_name(name)
        with self._lock:
            old = self._served.pop(name, None)
            if old is not None:
                self._retire(old)
        return old

    # -- serving ---------------------------------------------------------------------------
    def acquire(self, name: str) -> Lease:
        """A lease on the version served now. Raises ModelNotFound."""
        with self._lock:
            mv = self._served.get(name)
            if mv is not None:
                mv.leases += 1
        if mv is None:
            raise self.missing(name)
        return Lease(self, mv)

    def missing(self, name: str) -> ModelNotFound:
        """The error for a name without a served version, saying why."""
        try:
            check_name(name)
        except InvalidName as exc:
            return ModelNotFound(str(exc))
        where = "not loaded" if name in self.names_on_disk() else "unknown"
        return ModelNotFound(f"model {name!r} is {where}")

    def served(self) -> dict[str, ModelVersion]:
        with self._lock:
            return dict(self._served)

    def _release(self, mv: ModelVersion) -> None:
        with self._lock:
            mv.leases -= 1
            if mv.retired and mv.leases == 0:
                self._free(mv)

    def _retire(self, mv: ModelVersion) -> None:
        # Called with self._lock held.
        mv.retired = True
        if mv.leases == 0:
            self._free(mv)

    @staticmethod
    def _free(mv: ModelVersion) -> None:
        mv.model = None  # the last reference: ffi.gc frees the C model
        mv.freed = True
        log.info("freed %s version %d", mv.name, mv.version)

    def describe(self) -> list[dict[str, Any]]:
        served = self.served()
        out = []
        for name in sorted(set(self.names_on_disk()) | set(served)):
            disk = []
            for v in self.versions_on_disk(name):
                path = self.model_path(name, v)
                disk.append({"version": v, "sha256": self.sha256_of(path), "bytes": path.stat().st_size})
            mv = served.get(name)
            out.append(
                {
                    "name": name,
                    "on_disk": disk,
                    "served": mv.describe() if mv else None,
                    "pinned": self.pinned.get(name),
                    "last_error": self.last_error.get(name),
                }
            )
        return out


def _read_confined(path: Path) -> bytes:
    """Read the file without following a symlink swapped in after the path was checked."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OutsideRepository(f"{path.name} became a symlink") from None
        raise NotOnDisk(f"cannot open the model file: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(MAX_MODEL_BYTES + 1)
    if len(data) > MAX_MODEL_BYTES:
        raise LoadFailed("the model file is larger than 2 GiB")
    return data


def _read_card(path: Path) -> dict[str, Any]:
    """The version's model card, or {} when it has none; a bad card never stops a model."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return {}
    try:
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(MAX_CARD_BYTES + 1)
        if len(data) > MAX_CARD_BYTES:
            raise ValueError(f"larger than {MAX_CARD_BYTES} bytes")
        card = json.loads(data)
        if not isinstance(card, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        log.warning("ignoring the model card %s: %s", path, exc)
        return {}
    return card
