#!/usr/bin/env bash
# Dependency audit: pip-audit over xnornet's *locked* runtime dependencies.
#
#   scripts/audit/run.sh                      # audits requirements/runtime.lock
#   LOCK=path/to/other.lock scripts/audit/run.sh
#   PYTHON=.venv/bin/python scripts/audit/run.sh   # also lists where that venv differs from the lock
#   AUDIT_SERVICE=osv scripts/audit/run.sh    # another vulnerability service (default: pypi)
#   AUDIT_STRICT=1 scripts/audit/run.sh       # an unreachable service is an error, not a warning
#
# What is audited is the lock (scripts/lock/update.sh writes it; the Docker image installs
# exactly it with --require-hashes): the runtime closure of pyproject.toml's `dependencies`, no
# extras (test/train tools are not shipped, so they are not audited). pip-audit reads it with
# --require-hashes --disable-pip (every pin and hash taken as written, nothing resolved or
# installed) and runs from its own virtualenv ($AUDIT_VENV, default .venv-audit). $PYTHON, when
# given, is only compared with the lock: drift is printed (a venv made with `pip install -e .`
# resolves pyproject.toml afresh), and does not change what is audited or the exit status.
#
# Exit: 0 clean (or the service unreachable: a loud warning, unless AUDIT_STRICT=1);
#       1 known vulnerabilities; 2 usage/setup error.
# pip-audit reports "Dependency not found on PyPI" for every package when the PyPI JSON API
# cannot be reached (a mirror-only network answers 404) and then says "No known vulnerabilities":
# that is treated as unreachable, never as clean.
set -euo pipefail
cd "$(dirname "$0")/../.."
LOCK=${LOCK:-requirements/runtime.lock}
PYTHON=${PYTHON:-}
AUDIT_VENV=${AUDIT_VENV:-.venv-audit}
SERVICE=${AUDIT_SERVICE:-pypi}
STRICT=${AUDIT_STRICT:-0}
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -f "$LOCK" ]; then
    echo "audit: no lock file $LOCK (scripts/lock/update.sh writes it)" >&2
    exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
req="$work/locked.txt"   # name==version per line, for the listing and the drift check
sed -n 's/^\([A-Za-z0-9][A-Za-z0-9._-]*\)==\([^ ;\\]*\).*/\1==\2/p' "$LOCK" >"$req"
echo "== locked runtime dependencies ($LOCK: $(wc -l <"$req") packages)"
cat "$req"

if [ -n "$PYTHON" ]; then
    "$PYTHON" - "$req" <<'PY' || echo "audit: note: could not compare $PYTHON with the lock" >&2
import re, sys
from importlib import metadata

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

installed = {norm(d.metadata["Name"]): d.version for d in metadata.distributions()}
drift = []
for line in open(sys.argv[1]):
    name, version = line.strip().split("==")
    have = installed.get(norm(name))
    if have != version:
        drift.append(f"{name}: locked {version}, {sys.executable} has {have or 'none'}")
if drift:
    print(f"audit: note: {len(drift)} installed versions differ from the lock (the lock is audited):",
          *drift, sep="\n  ", file=sys.stderr)
PY
fi

if [ ! -x "$AUDIT_VENV/bin/pip-audit" ]; then
    python3 -m venv "$AUDIT_VENV" && "$AUDIT_VENV/bin/pip" install -q 'pip-audit>=2.7' || {
        echo "audit: WARNING: could not install pip-audit; the dependency audit did NOT run" >&2
        [ "$STRICT" = 1 ] && exit 2
        exit 0
    }
fi

echo "== pip-audit -s $SERVICE"
rc=0
"$AUDIT_VENV/bin/pip-audit" -s "$SERVICE" -r "$LOCK" --require-hashes --disable-pip --progress-spinner off \
    --format json -o "$work/report.json" 2>"$work/stderr.txt" || rc=$?

"$AUDIT_VENV/bin/python" - "$work/report.json" "$req" "$rc" "$STRICT" "$work/stderr.txt" <<'PY'
import json, re, sys
path, req, rc, strict, err = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

locked = dict(l.strip().split("==") for l in open(req) if l.strip())
wanted = {norm(n): v for n, v in locked.items()}
try:
    report = json.load(open(path))
except (OSError, ValueError):
    report = None
if report is None:
    print(open(err).read()[-2000:], file=sys.stderr)
    print(f"audit: WARNING: pip-audit produced no report (exit {rc}): the vulnerability service is "
          "probably unreachable; the dependency audit did NOT run", file=sys.stderr)
    sys.exit(2 if strict else 0)
deps = report.get("dependencies", [])
missing = sorted(set(wanted) - {norm(d["name"]) for d in deps})
if missing:  # e.g. dropped by an environment marker: not audited, so not clean either
    deps += [{"name": n, "skip_reason": "locked but not in pip-audit's report"} for n in missing]
skipped = [d for d in deps if d.get("skip_reason")]
audited = [d for d in deps if not d.get("skip_reason")]
vulns = [(d["name"], d["version"], v) for d in audited for v in d.get("vulns", [])]
for name, version, v in vulns:
    fix = ", ".join(v.get("fix_versions", [])) or "no fixed version"
    print(f"VULNERABLE {name} {version}: {v['id']} {' '.join(v.get('aliases', []))} (fixed in: {fix})")
for d in skipped:
    print(f"skipped {d['name']} {d.get('version') or wanted.get(norm(d['name']), '?')}: {d['skip_reason']}")
print(f"audit: {len(audited)} audited, {len(skipped)} skipped, {len(vulns)} known vulnerabilities")
if vulns:
    sys.exit(1)
if not audited:
    print("audit: WARNING: no package could be audited (the vulnerability service is unreachable "
          "from here, e.g. a mirror-only network): the dependency audit did NOT run", file=sys.stderr)
    sys.exit(2 if strict else 0)
if skipped:
    print(f"audit: WARNING: {len(skipped)} of {len(deps)} packages could not be audited", file=sys.stderr)
    sys.exit(2 if strict else 0)
PY
