"""`xnornet pull NAME`: a catalogue model downloaded, verified, converted and installed.

    download (training/fetch.py: resumable, locked cache entry)  ->  sha256 == catalogue
    -> convert with the entry's importer (training/converters.py)  ->  engine.format writer
    -> the engine loads the written file  ->  <repo>/<name>/<next version>/ installed atomically

Installing: model.xnor and model_card.json are written into a staging directory inside
<repo>/<name>/ (same filesystem), fsync'ed, and the directory is renamed to the next integer
version, so a server polling the repository sees either no version or a complete one (a name
starting with '.' is never a version). Two pulls into the same repository take turns on a lock;
a rename that finds the version taken moves on to the next number. On any failure the staging
directory is removed: the repository is left as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from engine import format as fmt
from engine.graph import Graph
from engine.input_spec import InputSpec
from engine.layout import CARD_FILE, MODEL_FILE

from . import catalog as cat
from . import fetch
from .converters import CONVERTERS, ConvertError

VERSION_DIGITS = 9


class PullError(Exception):
    """One message for the user; nothing was installed."""


@dataclass
class PullResult:
    name: str
    version: int
    path: Path
    installed: bool  # False: this source was already installed as `version`
    card: dict[str, Any]


# ---------------------------------------------------------------------------------------
# Where things go


def default_cache_dir(env: dict[str, str] | None = None) -> Path:
    """XNORNET_CACHE, else $XDG_CACHE_HOME/xnornet, else ~/.cache/xnornet."""
    env = dict(os.environ) if env is None else env
    if env.get("XNORNET_CACHE"):
        return Path(env["XNORNET_CACHE"])
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "xnornet"


def versions(model_dir: Path) -> list[int]:
    try:
        names = os.listdir(model_dir)
    except OSError:
        return []
    return sorted(int(n) for n in names if n.isdigit() and len(n) <= VERSION_DIGITS)


def read_card(version_dir: Path) -> dict[str, Any] | None:
    try:
        card = json.loads((version_dir / CARD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def installed_version(model_dir: Path, source_sha256: str) -> int | None:
    """The newest version converted from this source file whose model file is still intact."""
    for v in reversed(versions(model_dir)):
        card = read_card(model_dir / str(v))
        if not card or card.get("source", {}).get("sha256") != source_sha256:
            continue
        path = model_dir / str(v) / MODEL_FILE
        if path.is_file() and fetch.sha256_file(path) == card.get("converted", {}).get("sha256"):
            return v
    return None


# ---------------------------------------------------------------------------------------
# The model card


def _preprocessing(spec: InputSpec) -> str:
    resize = {
        "central_crop_bicubic": "central crop of 87.5 % then bicubic resize (larq_zoo.preprocess_input)",
        "shorter_crop": f"resize the shorter side to {spec.resize_size}, then centre crop",
        "exact": "resize to the input size",
    }.get(spec.resize, spec.resize)
    return (
        f"{spec.color.upper()} {spec.height}x{spec.width}, {resize}; "
        f"x = (pixel * {spec.scale:g} - mean) / std with mean {list(spec.mean)}, std {list(spec.std)}"
    )


def model_card(entry: cat.Entry, model: Graph, converted_sha256: str, converted_bytes: int) -> dict[str, Any]:
    from engine import __version__

    accuracy = dict(entry.accuracy) if entry.accuracy else None
    if accuracy is not None:
        accuracy["note"] = "published by the source for its own framework; not re-measured by xnornet pull"
    return {
        "name": entry.name,
        "title": entry.title,
        "task": dict(entry.task),
        "source": {
            "url": entry.source.url,
            "release": entry.source.release,
            "sha256": entry.source.sha256,
            "homepage": entry.homepage,
        },
        "license": entry.license,
        "accuracy": accuracy,
        "preprocessing": _preprocessing(model.input),
        "importer": entry.importer,
        "architecture": entry.architecture,
        "converted": {"sha256": converted_sha256, "bytes": converted_bytes, "file": MODEL_FILE},
        "pulled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "xnornet_version": __version__,
    }


# ---------------------------------------------------------------------------------------
# Installing


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _unwritable(repo: Path, exc: OSError) -> PullError:
    if fetch._disk_full(exc):
        return PullError(f"no space left in the repository {repo}")
    return PullError(f"cannot write to the repository {repo}: {exc.strerror or exc}")


@contextlib.contextmanager
def staging(repo: Path, name: str) -> Iterator[Path]:
    """A fresh directory inside <repo>/<name>/, removed unless it was renamed away (and with it
    every directory this call had to create, when they are still empty)."""
    model_dir = repo / name
    created = [d for d in (model_dir, *model_dir.parents) if not d.exists()]
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".pull-", dir=model_dir))
    except OSError as exc:
        raise _unwritable(repo, exc) from None
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        for d in created:  # deepest first; only empty ones: nothing was installed there
            with contextlib.suppress(OSError):
                d.rmdir()


def install(stage: Path, model_dir: Path) -> int:
    """Rename the staged version to the next free number; returns the version."""
    _fsync_dir(stage)
    version = (versions(model_dir) or [0])[-1] + 1
    while True:
        target = model_dir / str(version)
        try:
            # rename(2) fails on an existing non-empty directory, so a version another
            # process installed meanwhile is never replaced; an empty one would be.
            if target.exists():
                raise FileExistsError(errno.EEXIST, "exists")
            os.rename(stage, target)
        except FileExistsError:
            version += 1
            continue
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                version += 1
                continue
            raise
        _fsync_dir(model_dir)
        return version


# ---------------------------------------------------------------------------------------
# The whole pull


def _check_requirements(entry: cat.Entry) -> None:
    for module, how in CONVERTERS[entry.importer].requires:
        if importlib.util.find_spec(module) is None:
            raise PullError(
                f"converting {entry.name} ({entry.importer} files) needs the Python module {module!r}, "
                f"which is not installed: {how}"
            )


def _by_hand(entry: cat.Entry, repo: Path) -> str:
    return (
        f"to install it by hand, download {entry.source.url}\n"
        f"and run: xnornet pull {entry.name} --from {entry.source.file} --repository {repo}"
    )


def _source_file(
    entry: cat.Entry,
    repo: Path,
    cache_dir: Path,
    from_file: Path | None,
    stream: TextIO | None,
    retries: int,
    timeout: float,
    interval: float | None,
    backoff: float,
) -> Path:
    src = entry.source
    if from_file is not None:
        if not from_file.is_file():
            raise PullError(f"{from_file}: no such file")
        digest = fetch.sha256_file(from_file)
        if digest != src.sha256:
            raise PullError(
                f"{from_file} has sha256 {digest}, but the catalogue's {entry.name} is {src.url} "
                f"with sha256 {src.sha256}: not that file (truncated, or another release)"
            )
        return from_file
    try:
        return fetch.fetch(
            src.url,
            cache_dir,
            src.sha256,
            size=src.size,
            stream=stream,
            retries=retries,
            timeout=timeout,
            interval=interval,
            backoff=backoff,
        )
    except fetch.NoNetwork as exc:
        raise PullError(f"{exc}\n{_by_hand(entry, repo)}") from None
    except fetch.ChecksumMismatch as exc:
        raise PullError(f"{exc}: the download was deleted and nothing was installed") from None
    except fetch.FetchError as exc:
        part = cache_dir / f"{src.sha256}.part"
        if isinstance(exc, fetch.HttpStatus) and 400 <= exc.code < 500 and exc.code not in (408, 429):
            part.unlink(missing_ok=True)  # the file is not there (any more): nothing to resume
        kept = (
            f"; the partial download ({part.stat().st_size} bytes) is kept in {cache_dir}: "
            "run the same command again to resume"
            if part.exists() and part.stat().st_size
            else ""
        )
        if not kept:
            part.unlink(missing_ok=True)
        raise PullError(f"{exc}{kept}") from None
    except OSError as exc:
        raise PullError(f"cannot use the download cache {cache_dir}: {exc.strerror or exc}") from None


def pull(
    name: str,
    repository: str | os.PathLike[str],
    *,
    catalog: cat.Catalog | None = None,
    cache_dir: Path | None = None,
    from_file: str | os.PathLike[str] | None = None,
    force: bool = False,
    stream: TextIO | None = sys.stderr,
    retries: int = 3,
    timeout: float = 30.0,
    interval: float | None = None,
    backoff: float = 1.0,
) -> PullResult:
    """Install catalogue model `name` as the next version in `repository` (see the module doc).
    Raises PullError (or catalog.UnknownModel); nothing is left in the repository then."""
    catalog = catalog or cat.shipped()
    entry = catalog.get(name)
    _check_requirements(entry)
    repo = Path(repository)
    cache_dir = cache_dir or default_cache_dir()
    model_dir = repo / entry.name
    # One pull of a model into a repository at a time (the second then finds it installed);
    # the staging directory comes first, so an unwritable repository costs no download.
    with _repo_lock(cache_dir, model_dir, stream), staging(repo, entry.name) as stage:
        if not force:
            have = installed_version(model_dir, entry.source.sha256)
            if have is not None:
                card = read_card(model_dir / str(have)) or {}
                return PullResult(entry.name, have, model_dir / str(have) / MODEL_FILE, False, card)
        path = _source_file(
            entry,
            repo,
            cache_dir / "downloads",
            Path(from_file) if from_file else None,
            stream,
            retries,
            timeout,
            interval,
            backoff,
        )
        if stream is not None:
            stream.write(
                f"converting {path.name} with the {entry.importer} importer ({entry.architecture})\n"
            )
        try:
            model, warnings = CONVERTERS[entry.importer].convert(path, entry)
        except ConvertError as exc:
            if from_file is None:
                path.unlink(missing_ok=True)  # verified but useless: no other use for it
            raise PullError(
                f"{entry.source.file} does not convert as {entry.architecture}: {exc}\nnothing was installed"
            ) from None
        for w in warnings:
            if stream is not None:
                stream.write(f"warning: {w}\n")
        try:
            data = fmt.to_bytes(model)  # the engine's format writer
            _write_synced(stage / MODEL_FILE, data)
            _verify_loads(stage / MODEL_FILE, entry)
            digest = hashlib.sha256(data).hexdigest()
            card = model_card(entry, model, digest, len(data))
            _write_synced(stage / CARD_FILE, (json.dumps(card, indent=2) + "\n").encode())
            version = install(stage, model_dir)
        except OSError as exc:
            raise _unwritable(repo, exc) from None
    return PullResult(entry.name, version, model_dir / str(version) / MODEL_FILE, True, card)


@contextlib.contextmanager
def _repo_lock(cache_dir: Path, model_dir: Path, stream: TextIO | None) -> Iterator[None]:
    """A lock per repository model directory, kept in the cache (never left in the repository)."""
    key = hashlib.sha256(os.fsencode(os.path.abspath(model_dir))).hexdigest()[:32]
    try:
        (cache_dir / "locks").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PullError(f"cannot use the download cache {cache_dir}: {exc.strerror or exc}") from None
    with fetch.locked(cache_dir / "locks" / f"{key}.lock", stream):
        yield


def _verify_loads(path: Path, entry: cat.Entry) -> None:
    """The engine accepts the written file: what a server will do with it."""
    from engine import Model, XnorError

    try:
        info = Model.load(path, threads=1).info
    except XnorError as exc:
        raise PullError(f"the engine rejects the converted {entry.name}: {exc}") from None
    if int(info.output_size) != int(entry.task["classes"]):
        raise PullError(
            f"the converted {entry.name} has {info.output_size} outputs, the catalogue says "
            f"{entry.task['classes']} classes"
        )


# ---------------------------------------------------------------------------------------
# --list


def listing(catalog: cat.Catalog, repo: Path) -> str:
    rows = [("name", "task", "top-1", "top-5", "license", "pulled", "source")]
    for e in catalog.entries:
        acc = e.accuracy or {}
        pulled = installed_version(repo / e.name, e.source.sha256)
        rows.append(
            (
                e.name,
                str(e.task["summary"]),
                f"{acc['top1']:.2f} %" if acc.get("top1") is not None else "-",
                f"{acc['top5']:.2f} %" if acc.get("top5") is not None else "-",
                e.license,
                f"version {pulled}" if pulled is not None else "no",
                e.source.url,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([f"catalogue: {catalog.origin}", f"repository: {repo}", "", *lines])


# ---------------------------------------------------------------------------------------
# Command line


def add_arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="a catalogue model (see --list)")
    parser.add_argument(
        "--repository",
        default=None,
        help="repository <dir>/<name>/<version>/model.xnor (default: XNORNET_REPOSITORY, else ./models)",
    )
    parser.add_argument("--list", action="store_true", help="show the catalogue and what is already pulled")
    parser.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE",
        default=None,
        help="convert this file, downloaded by hand (its sha256 must match the catalogue)",
    )
    parser.add_argument(
        "--catalog",
        default=None,
        metavar="PATH_OR_URL",
        help="another catalogue (default: XNORNET_CATALOG, else the one shipped in the package)",
    )
    parser.add_argument(
        "--cache",
        default=None,
        help="download cache (default: XNORNET_CACHE, else ~/.cache/xnornet)",
    )
    parser.add_argument("--force", action="store_true", help="install a new version even if already pulled")
    parser.add_argument("--retries", type=int, default=3, help="resume a cut download this many times")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds without data before giving up")


def run(name: str, args: argparse.Namespace) -> int:
    err = sys.stderr
    repo = Path(args.repository or os.environ.get("XNORNET_REPOSITORY") or "models")
    try:
        catalog = cat.load(args.catalog or os.environ.get("XNORNET_CATALOG"))
        if args.list:
            print(listing(catalog, repo))
            return 0
        if not args.name:
            print("xnornet pull: name a model (xnornet pull --list shows the catalogue)", file=err)
            return 2
        cache = Path(args.cache) if args.cache else default_cache_dir()
        res = pull(
            args.name,
            repo,
            catalog=catalog,
            cache_dir=cache,
            from_file=args.from_file,
            force=args.force,
            stream=err,
            retries=max(0, args.retries),
            timeout=args.timeout,
        )
    except (PullError, cat.CatalogError, cat.UnknownModel) as exc:
        print(f"xnornet pull: {exc}", file=err)
        return 1
    verb = "installed" if res.installed else "already installed"
    print(f"{res.name}: {verb} as version {res.version}: {res.path}")
    print(f"serve it: xnornet serve --repository {repo} --model {res.name}")
    return 0
