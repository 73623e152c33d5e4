"""The lock of the runtime dependencies (requirements/runtime.lock, from scripts/lock/update.sh).

The Docker image installs exactly the lock (pip --require-hashes, then xnornet with --no-deps)
and scripts/audit/run.sh audits it, so it must stay in step with pyproject.toml: every runtime
dependency locked (markers evaluated for the lock's target, Linux x86_64 / CPython 3.11), each
pin inside pyproject's specifier and above the security floors, every entry hashed, nothing from
the extras. Adding, raising or removing a runtime dependency without re-locking fails here.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "runtime.lock"
PYPROJECT = ROOT / "pyproject.toml"
DIRECT = "xnornet (pyproject.toml)"  # pip-compile's "# via" for pyproject's own requirements

# What the lock is resolved for (the Dockerfile's Debian bookworm python3, and CI).
TARGET = {
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "implementation_name": "cpython",
    "python_version": "3.11",
    "python_full_version": "3.11.2",
    "implementation_version": "3.11.2",
    "extra": "",
}

# Minimum safe versions (SECURITY.md): pyproject.toml must require them and the lock satisfy them.
FLOORS = {
    "python-multipart": Version("0.0.18"),  # CVE-2024-53981, CVE-2024-24762
    "starlette": Version("0.40.0"),  # CVE-2024-47874
    "pillow": Version("10.3"),  # CVE-2024-28219
    "fastapi": Version("0.115.3"),  # the first that allows starlette >= 0.40
}


@dataclass
class Entry:
    req: Requirement
    hashes: list[str]
    via: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return canonicalize_name(self.req.name)

    @property
    def version(self) -> Version:
        (spec,) = self.req.specifier
        return Version(spec.version)


def parse_lock(text: str) -> list[Entry]:
    """pip-compile's output: `name==version [; marker] \\` + `--hash=...` lines, then `# via` comments."""
    entries: list[Entry] = []
    logical = re.sub(r"\\\n", " ", text)  # join continuation lines
    for line in logical.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            via = re.sub(r"^#\s*(via\b)?\s*", "", stripped)
            if entries and line.startswith(" ") and via and not via.startswith("-r "):
                entries[-1].via.add(via)
            continue
        assert not stripped.startswith("-"), f"unexpected option in the lock: {stripped}"
        hashes = re.findall(r"--hash=(\S+)", stripped)
        req = Requirement(re.sub(r"\s--hash=\S+", "", stripped).strip())
        entries.append(Entry(req, hashes))
    return entries


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    return [Requirement(r) for r in project["dependencies"]]


def extras_requirements() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    return [Requirement(r) for reqs in project["optional-dependencies"].values() for r in reqs]


def applies(req: Requirement) -> bool:
    return req.marker is None or req.marker.evaluate(TARGET)


def lock_problems(requirements: list[Requirement], entries: list[Entry]) -> list[str]:
    """Where the lock does not satisfy `requirements` (empty when it does)."""
    locked = {e.name: e for e in entries}
    problems = []
    for req in filter(applies, requirements):
        entry = locked.get(canonicalize_name(req.name))
        if entry is None:
            problems.append(f"{req.name} is a runtime dependency but is not locked")
        elif not req.specifier.contains(entry.version, prereleases=True):
            problems.append(f"{req.name}: locked {entry.version} is outside {req.specifier}")
    return problems


@pytest.fixture(scope="module")
def entries() -> list[Entry]:
    if not LOCK.is_file():
        pytest.fail(f"{LOCK.relative_to(ROOT)} is missing: run scripts/lock/update.sh")
    return parse_lock(LOCK.read_text())


def test_every_entry_is_an_exact_pin_and_named_once(entries: list[Entry]) -> None:
    assert entries, "the lock is empty"
    for e in entries:
        (spec,) = e.req.specifier
        assert spec.operator == "==" and "*" not in spec.version, f"{e.req}: not an exact pin"
        assert not e.req.extras and e.req.url is None, f"{e.req}: extras or a URL in the lock"
    names = [e.name for e in entries]
    assert len(names) == len(set(names)), f"named twice: {sorted({n for n in names if names.count(n) > 1})}"


def test_every_entry_has_a_sha256_hash(entries: list[Entry]) -> None:
    for e in entries:
        assert e.hashes, f"{e.name}: no --hash (pip --require-hashes would refuse the lock)"
        for h in e.hashes:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", h), f"{e.name}: malformed hash {h}"


def test_every_entry_installs_on_the_target(entries: list[Entry]) -> None:
    skipped = [str(e.req) for e in entries if not applies(e.req)]
    assert not skipped, f"entries whose marker excludes Linux x86_64 / CPython 3.11: {skipped}"


def test_lock_satisfies_every_runtime_dependency(entries: list[Entry]) -> None:
    problems = lock_problems(runtime_requirements(), entries)
    assert not problems, "the lock is out of date (run scripts/lock/update.sh):\n" + "\n".join(problems)


def test_uvloop_and_httptools_are_locked(entries: list[Entry]) -> None:
    # uvloop carries a marker in pyproject.toml: it applies on the target, so it must be locked.
    assert {"uvloop", "httptools"} <= {e.name for e in entries}


def test_a_new_runtime_dependency_without_relocking_fails(entries: list[Entry]) -> None:
    added = [*runtime_requirements(), Requirement("leftpad>=1.0"), Requirement("pillow>=999")]
    problems = lock_problems(added, entries)
    assert any(p.startswith("leftpad ") for p in problems)
    assert any(p.startswith("pillow:") for p in problems)
    # ... while a dependency whose marker excludes the target is not required.
    assert not lock_problems([Requirement("leftpad>=1; sys_platform == 'win32'")], entries)


def test_no_direct_pin_that_pyproject_no_longer_requires(entries: list[Entry]) -> None:
    runtime = {canonicalize_name(r.name) for r in runtime_requirements()}
    stale = [e.name for e in entries if e.via == {DIRECT} and e.name not in runtime]
    assert not stale, f"locked only for pyproject.toml, which no longer requires them (re-lock): {stale}"


def test_security_floors(entries: list[Entry]) -> None:
    locked = {e.name: e.version for e in entries}
    declared = {canonicalize_name(r.name): r.specifier for r in runtime_requirements()}
    for name, floor in FLOORS.items():
        spec: SpecifierSet = declared[canonicalize_name(name)]
        assert any(
            s.operator in (">=", "~=", "==", "===", ">") and Version(s.version) >= floor for s in spec
        ), f"pyproject.toml: {name}{spec} does not require >= {floor}"
        assert not spec.contains(Version("0.0.1")), f"pyproject.toml: {name}{spec} has no lower bound"
        assert locked[name] >= floor, f"lock: {name} {locked[name]} is below the safe {floor}"


def test_no_extras_only_package_is_locked(entries: list[Entry]) -> None:
    runtime = {canonicalize_name(r.name) for r in runtime_requirements()}
    extras_only = {canonicalize_name(r.name) for r in extras_requirements()} - runtime
    assert {"torch", "pytest", "mypy", "ruff"} <= extras_only  # the check below means something
    leaked = sorted(extras_only & {e.name for e in entries})
    assert not leaked, f"extras-only packages in the runtime lock: {leaked}"
    assert "xnornet" not in {e.name for e in entries}, "the project itself is installed --no-deps"


def test_marker_evaluation_is_for_the_target_not_this_host() -> None:
    assert Marker("sys_platform == 'linux' and python_version == '3.11'").evaluate(TARGET)


def test_the_image_installs_the_lock_with_hash_checking() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"pip install --require-hashes\b[^\n]*-r requirements/runtime\.lock", dockerfile)
    assert re.search(r"pip install --no-deps \.", dockerfile), "xnornet must not re-resolve its deps"
    assert "!requirements/runtime.lock" in (ROOT / ".dockerignore").read_text()
