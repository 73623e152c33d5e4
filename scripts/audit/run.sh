#!/usr/bin/env bash
# Dependency audit (issue 5): pip-audit over xnornet's *runtime* dependencies as installed.
#
#   scripts/audit/run.sh                      # audits the venv of $PYTHON (default .venv/bin/python)
#   PYTHON=/path/venv/bin/python scripts/audit/run.sh
#   AUDIT_SERVICE=osv scripts/audit/run.sh    # another vulnerability service (default: pypi)
#   AUDIT_STRICT=1 scripts/audit/run.sh       # an unreachable service is an error, not a warning
#
# The runtime closure is read from the installed metadata: the requirements of the `xnornet`
# distribution without extras, followed transitively (test/train tools are not shipped, so they
# are not audited). The pinned list goes to pip-audit with --no-deps, and pip-audit runs from its
# own virtualenv ($AUDIT_VENV, default .venv-audit) so it never changes the audited one.
#
# Exit: 0 clean (or the service unreachable: a loud warning, unless AUDIT_STRICT=1);
#       1 known vulnerabilities; 2 usage/setup error.
# pip-audit reports "Dependency not found on PyPI" for every package when the PyPI JSON API
# cannot be reached (a mirror-only network answers 404) and then says "No known vulnerabilities":
# that is treated as unreachable, never as clean.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
AUDIT_VENV=${AUDIT_VENV:-.venv-audit}
SERVICE=${AUDIT_SERVICE:-pypi}
STRICT=${AUDIT_STRICT:-0}
export PIP_DISABLE_PIP_VERSION_CHECK=1

if ! "$PYTHON" -c 'import importlib.metadata as m; m.distribution("xnornet")' 2>/dev/null; then
    echo "audit: $PYTHON has no xnornet installed (pip install -e . first)" >&2
    exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
req="$work/runtime-requirements.txt"

"$PYTHON" - "$req" <<'PY'
import re, sys
from importlib import metadata

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

seen, todo = {}, ["xnornet"]
while todo:
    name = norm(todo.pop())
    if name in seen:
        continue
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        print(f"audit: warning: {name} is required but not installed", file=sys.stderr)
        continue
    seen[name] = dist.version
    for spec in dist.requires or []:
        req, _, marker = spec.partition(";")
        if "extra" in marker:
            continue  # optional extras are not part of the runtime
        if marker.strip():
            from packaging.markers import Marker  # only needed for environment markers
            if not Marker(marker.strip()).evaluate():
                continue
        todo.append(re.split(r"[\s<>=!~\[(]", req.strip(), maxsplit=1)[0])
seen.pop("xnornet", None)  # our own package is not on PyPI
with open(sys.argv[1], "w") as f:
    for name, version in sorted(seen.items()):
        f.write(f"{name}=={version}\n")
PY
echo "== runtime dependencies ($(wc -l <"$req") packages)"
cat "$req"

if [ ! -x "$AUDIT_VENV/bin/pip-audit" ]; then
    python3 -m venv "$AUDIT_VENV" && "$AUDIT_VENV/bin/pip" install -q 'pip-audit>=2.7' || {
        echo "audit: WARNING: could not install pip-audit; the dependency audit did NOT run" >&2
        [ "$STRICT" = 1 ] && exit 2
        exit 0
    }
fi

echo "== pip-audit -s $SERVICE"
rc=0
"$AUDIT_VENV/bin/pip-audit" -s "$SERVICE" -r "$req" --no-deps --disable-pip --progress-spinner off \
    --format json -o "$work/report.json" 2>"$work/stderr.txt" || rc=$?

"$AUDIT_VENV/bin/python" - "$work/report.json" "$req" "$rc" "$STRICT" "$work/stderr.txt" <<'PY'
import json, sys
path, req, rc, strict, err = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
wanted = [l.split("==")[0] for l in open(req) if l.strip()]
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
skipped = [d for d in deps if d.get("skip_reason")]
audited = [d for d in deps if not d.get("skip_reason")]
vulns = [(d["name"], d["version"], v) for d in audited for v in d.get("vulns", [])]
for name, version, v in vulns:
    fix = ", ".join(v.get("fix_versions", [])) or "no fixed version"
    print(f"VULNERABLE {name} {version}: {v['id']} {' '.join(v.get('aliases', []))} (fixed in: {fix})")
for d in skipped:
    print(f"skipped {d['name']} {d.get('version', '?')}: {d['skip_reason']}")
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
