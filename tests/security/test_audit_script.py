"""scripts/audit/run.sh's verdicts, with a stand-in for pip-audit (this network reaches no
vulnerability service, so the real one can only report "unreachable" here): a known
vulnerability fails the audit, a clean report passes, and a report that audited nothing is
never taken as clean (a warning, or exit 2 with AUDIT_STRICT=1).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .test_lock import LOCK, ROOT, parse_lock


def locked() -> dict[str, str]:
    return {e.req.name: str(e.version) for e in parse_lock(LOCK.read_text())}


def stub_venv(tmp_path: Path, report: dict[str, object] | None, rc: int) -> Path:
    """A directory that looks like the audit venv: bin/python and a bin/pip-audit that writes
    `report` to its -o argument (or nothing) and exits with `rc`."""
    venv = tmp_path / "audit-venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    payload = json.dumps(report) if report is not None else ""
    (venv / "bin" / "pip-audit").write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "args = sys.argv[1:]\n"
        "assert '--require-hashes' in args and '-r' in args, args\n"
        f"payload = {payload!r}\n"
        "if payload:\n"
        "    open(args[args.index('-o') + 1], 'w').write(payload)\n"
        "else:\n"
        "    print('connection refused', file=sys.stderr)\n"
        f"sys.exit({rc})\n"
    )
    (venv / "bin" / "pip-audit").chmod(0o755)
    return venv


def run_audit(venv: Path, strict: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDIT_", "PYTHON"))}
    env.update(AUDIT_VENV=str(venv), AUDIT_STRICT="1" if strict else "0")
    return subprocess.run(
        ["bash", "scripts/audit/run.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def report(vulnerable: str | None = None, skip_all: bool = False) -> dict[str, object]:
    deps: list[dict[str, object]] = []
    for name, version in locked().items():
        if skip_all:
            deps.append({"name": name, "skip_reason": "Dependency not found on PyPI"})
            continue
        vulns: list[dict[str, object]] = []
        if name.lower() == vulnerable:
            vulns = [{"id": "PYSEC-0000-1", "fix_versions": ["99.0"], "aliases": ["CVE-0000-1"]}]
        deps.append({"name": name, "version": version, "vulns": vulns})
    return {"dependencies": deps, "fixes": []}


@pytest.fixture(autouse=True)
def _bash() -> None:
    if sys.platform != "linux":
        pytest.skip("the audit script is a Linux shell script")


def test_clean_report_passes(tmp_path: Path) -> None:
    r = run_audit(stub_venv(tmp_path, report(), 0), strict=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(locked())} audited, 0 skipped, 0 known vulnerabilities" in r.stdout


def test_known_vulnerability_fails(tmp_path: Path) -> None:
    r = run_audit(stub_venv(tmp_path, report(vulnerable="pillow"), 1))
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.search(r"VULNERABLE pillow \S+: PYSEC-0000-1 CVE-0000-1 \(fixed in: 99.0\)", r.stdout)


@pytest.mark.parametrize("payload", ["all-skipped", "no-report"])
def test_nothing_audited_is_never_clean(tmp_path: Path, payload: str) -> None:
    rep = report(skip_all=True) if payload == "all-skipped" else None
    venv = stub_venv(tmp_path, rep, 0 if rep else 1)
    lenient = run_audit(venv)
    assert lenient.returncode == 0 and "did NOT run" in lenient.stderr, lenient.stderr
    strict = run_audit(venv, strict=True)
    assert strict.returncode == 2 and "did NOT run" in strict.stderr, strict.stderr
