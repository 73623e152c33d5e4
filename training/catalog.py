"""The model catalogue: public pretrained models `xnornet pull` can fetch, verify and convert.

The catalogue shipped in the package is training/catalog.json; XNORNET_CATALOG or
`--catalog PATH_OR_URL` replaces it (a company mirror). training/CATALOG.md documents the
schema; `validate` enforces it and reports every problem at once. The catalogue is also the
one record of the Larq Zoo release files (their sha256 and published accuracy) that
`xnornet import larq-zoo` recognizes.
"""

from __future__ import annotations

import difflib
import json
import re
import urllib.parse
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SHIPPED = Path(__file__).with_name("catalog.json")
SCHEMA = "xnornet-catalog/1"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")  # also a valid repository model name
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
URL_SCHEMES = ("https", "http", "file")
MAX_CATALOG_BYTES = 4 << 20


class CatalogError(ValueError):
    """The catalogue cannot be read or does not follow the schema (the message lists why)."""


class UnknownModel(LookupError):
    def __init__(self, name: str, suggestions: list[str], known: list[str]) -> None:
        hint = f"; did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(f"no model {name!r} in the catalogue{hint} (known: {', '.join(known) or 'none'})")
        self.suggestions = suggestions


@dataclass(frozen=True)
class SourceFile:
    url: str
    sha256: str
    release: str | None = None
    size: int | None = None  # bytes, where the publisher states it; the sha256 is what is verified

    @property
    def file(self) -> str:
        return Path(urllib.parse.urlsplit(self.url).path).name


@dataclass(frozen=True)
class Entry:
    name: str
    title: str
    task: dict[str, Any]  # dataset, classes, summary ("ImageNet, 1000 classes")
    importer: str
    architecture: str
    source: SourceFile
    license: str
    homepage: str | None = None
    accuracy: dict[str, Any] | None = None  # dataset, top1, top5 (percent), by
    feature_extractor: SourceFile | None = None  # the same release without its classifier
    input_size: int = 224
    width: float = 1.0  # channel multiplier of the architecture (1.0 for every public release)


@dataclass(frozen=True)
class Catalog:
    origin: str
    entries: tuple[Entry, ...]

    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def get(self, name: str) -> Entry:
        for e in self.entries:
            if e.name == name:
                return e
        lowered = {n.lower(): n for n in self.names()}
        if name.lower() in lowered:
            return self.get(lowered[name.lower()])
        close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)
        raise UnknownModel(name, [lowered[c] for c in close], self.names())


# ---------------------------------------------------------------------------------------
# Validation


def _url_problem(url: Any) -> str | None:
    if not isinstance(url, str) or not url:
        return "not a string"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in URL_SCHEMES:
        return f"scheme {parts.scheme!r} is not one of {', '.join(URL_SCHEMES)}"
    if parts.scheme != "file" and not parts.hostname:
        return "no host"
    if not parts.path or parts.path.endswith("/"):
        return "does not name a file"
    if any(ch.isspace() for ch in url):
        return "contains whitespace"
    return None


def _source(d: Any, where: str, problems: list[str], size_allowed: bool = True) -> SourceFile | None:
    if not isinstance(d, dict):
        problems.append(f"{where}: expected an object")
        return None
    allowed = {"url", "sha256", "release"} | ({"size"} if size_allowed else set())
    for k in sorted(set(d) - allowed):
        problems.append(f"{where}.{k}: unknown field")
    bad = _url_problem(d.get("url"))
    if bad:
        problems.append(f"{where}.url: {bad}")
    sha = d.get("sha256")
    if not isinstance(sha, str) or not SHA256_RE.fullmatch(sha):
        problems.append(f"{where}.sha256: expected 64 lower-case hex digits")
    release = d.get("release")
    if release is not None and not isinstance(release, str):
        problems.append(f"{where}.release: expected a string")
    size = d.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
        problems.append(f"{where}.size: expected a positive integer or null")
    if bad or not isinstance(sha, str) or not SHA256_RE.fullmatch(sha):
        return None
    return SourceFile(d["url"], sha, release if isinstance(release, str) else None, size)


_ENTRY_FIELDS = {
    "name",
    "title",
    "task",
    "importer",
    "architecture",
    "source",
    "feature_extractor",
    "license",
    "homepage",
    "accuracy",
    "input_size",
    "width",
}


def _entry(d: Any, where: str, problems: list[str]) -> Entry | None:
    from .converters import CONVERTERS

    if not isinstance(d, dict):
        problems.append(f"{where}: expected an object")
        return None
    before = len(problems)
    name = d.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        problems.append(f"{where}.name: lower-case letters, digits, '_', '-', '.' (at most 64)")
    else:
        where = f"{where} ({name})"
    for k in sorted(set(d) - _ENTRY_FIELDS):
        problems.append(f"{where}.{k}: unknown field")
    for k in ("title", "license"):
        if not isinstance(d.get(k), str) or not d[k].strip():
            problems.append(f"{where}.{k}: expected a non-empty string")
    task = d.get("task")
    if not (
        isinstance(task, dict)
        and isinstance(task.get("dataset"), str)
        and isinstance(task.get("summary"), str)
        and isinstance(task.get("classes"), int)
        and task["classes"] > 0
    ):
        problems.append(f"{where}.task: expected {{dataset: str, classes: int > 0, summary: str}}")
    importer, arch = d.get("importer"), d.get("architecture")
    if importer not in CONVERTERS:
        problems.append(f"{where}.importer: {importer!r} is not one of {', '.join(CONVERTERS)}")
    elif arch not in CONVERTERS[importer].architectures:
        problems.append(
            f"{where}.architecture: {arch!r} is not one of {', '.join(CONVERTERS[importer].architectures)}"
        )
    source = _source(d.get("source"), f"{where}.source", problems)
    fe = None
    if d.get("feature_extractor") is not None:
        fe = _source(d["feature_extractor"], f"{where}.feature_extractor", problems, size_allowed=False)
    homepage = d.get("homepage")
    if homepage is not None and _url_problem(homepage) not in (None, "does not name a file"):
        problems.append(f"{where}.homepage: {_url_problem(homepage)}")
    acc = d.get("accuracy")
    if acc is not None:
        if not isinstance(acc, dict) or not isinstance(acc.get("dataset"), str):
            problems.append(f"{where}.accuracy: expected {{dataset: str, top1: %, top5: %, by: str}}")
        else:
            for k in ("top1", "top5"):
                v = acc.get(k)
                if v is not None and (not isinstance(v, int | float) or not 0 <= v <= 100):
                    problems.append(f"{where}.accuracy.{k}: expected a percentage 0..100")
    size = d.get("input_size", 224)
    if not isinstance(size, int) or not 8 <= size <= 4096:
        problems.append(f"{where}.input_size: expected an integer 8..4096")
    width = d.get("width", 1.0)
    if not isinstance(width, int | float) or not 0 < width <= 4:
        problems.append(f"{where}.width: expected a number in (0, 4]")
    if len(problems) > before or source is None:
        return None
    return Entry(
        name=str(name),
        title=d["title"],
        task=dict(task or {}),
        importer=str(importer),
        architecture=str(arch),
        source=source,
        license=d["license"],
        homepage=homepage,
        accuracy=dict(acc) if acc else None,
        feature_extractor=fe,
        input_size=size,
        width=float(width),
    )


def validate(data: Any, origin: str = "<catalogue>") -> Catalog:
    """The catalogue in `data` (parsed JSON), or CatalogError listing every problem."""
    problems: list[str] = []
    entries: list[Entry] = []
    if not isinstance(data, dict):
        raise CatalogError(f"{origin}: expected a JSON object")
    if data.get("schema") != SCHEMA:
        problems.append(f"schema: expected {SCHEMA!r}, found {data.get('schema')!r}")
    for k in sorted(set(data) - {"schema", "description", "models"}):
        problems.append(f"{k}: unknown field")
    models = data.get("models")
    if not isinstance(models, list):
        problems.append("models: expected a list")
        models = []
    for i, d in enumerate(models):
        e = _entry(d, f"models[{i}]", problems)
        if e is not None:
            entries.append(e)
    seen: set[str] = set()
    for e in entries:
        if e.name in seen:
            problems.append(f"models: the name {e.name!r} appears twice")
        seen.add(e.name)
    if problems:
        raise CatalogError(f"{origin} does not follow the catalogue schema:\n  " + "\n  ".join(problems))
    return Catalog(origin, tuple(entries))


# ---------------------------------------------------------------------------------------
# Loading


def parse(text: str | bytes, origin: str) -> Catalog:
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{origin}: not valid JSON: {exc}") from None
    return validate(data, origin)


@cache
def shipped() -> Catalog:
    return parse(SHIPPED.read_bytes(), str(SHIPPED))


def load(source: str | None = None, *, timeout: float = 30.0) -> Catalog:
    """The catalogue at `source` (a path, a file:// or an http(s):// URL), else the shipped one."""
    if not source:
        return shipped()
    scheme = urllib.parse.urlsplit(source).scheme
    if scheme in ("http", "https"):
        from .fetch import FetchError, read_url

        try:
            return parse(read_url(source, MAX_CATALOG_BYTES, timeout=timeout), source)
        except FetchError as exc:
            raise CatalogError(f"cannot read the catalogue: {exc}") from None
    path = (
        Path(urllib.parse.unquote(urllib.parse.urlsplit(source).path)) if scheme == "file" else Path(source)
    )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"cannot read the catalogue {source}: {exc.strerror or exc}") from None
    return parse(data, source)
