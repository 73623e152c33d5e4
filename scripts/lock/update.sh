#!/usr/bin/env bash
# Regenerate requirements/runtime.lock: xnornet's *runtime* dependency closure (pyproject.toml's
# `dependencies`, no extras) with exact pins and sha256 hashes, for Linux x86_64 / CPython 3.11
# (what the Dockerfile and CI use). The Dockerfile installs from it with --require-hashes and
# scripts/audit/run.sh audits it; tests/security/test_lock.py fails until it is regenerated.
#
#   scripts/lock/update.sh                   # after changing `dependencies` in pyproject.toml:
#                                            # keeps the current pins where they still satisfy it
#   scripts/lock/update.sh --upgrade         # everything to the newest allowed versions
#   scripts/lock/update.sh -P pillow         # one package to its newest (e.g. a security fix)
#
# Run it on Linux x86_64 with CPython 3.11 ($LOCK_PYTHON, default python3.11): pip-compile
# resolves for the interpreter it runs under. It uses pip-tools (pinned below) in its own
# virtualenv ($LOCK_VENV, default .venv-lock) and resolves against PyPI only ($LOCK_INDEX_URL,
# default https://pypi.org/simple); local pip configuration (find-links, extra indexes) is
# ignored, so no locally built wheel's hash can end up in the lock. Arguments go to pip-compile.
set -euo pipefail
cd "$(dirname "$0")/../.."
LOCK_PYTHON=${LOCK_PYTHON:-python3.11}
LOCK_VENV=${LOCK_VENV:-.venv-lock}
LOCK_INDEX_URL=${LOCK_INDEX_URL:-https://pypi.org/simple}
PIP_TOOLS=pip-tools==7.6.2
out=requirements/runtime.lock
export PIP_DISABLE_PIP_VERSION_CHECK=1

"$LOCK_PYTHON" - <<'PY' || exit 2
import platform, sys
want = ("Linux", "x86_64", "CPython", (3, 11))
have = (platform.system(), platform.machine(), platform.python_implementation(), sys.version_info[:2])
if have != want:
    sys.exit(f"lock: the lock is for {want}, this interpreter is {have}: set LOCK_PYTHON")
PY

if ! "$LOCK_VENV/bin/pip-compile" --version 2>/dev/null | grep -q "${PIP_TOOLS#*==}"; then
    "$LOCK_PYTHON" -m venv --clear "$LOCK_VENV"
    "$LOCK_VENV/bin/pip" install -q "$PIP_TOOLS"
fi

mkdir -p "$(dirname "$out")"
env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL PIP_CONFIG_FILE=/dev/null \
    CUSTOM_COMPILE_COMMAND="scripts/lock/update.sh" \
    "$LOCK_VENV/bin/pip-compile" --quiet --generate-hashes --strip-extras --allow-unsafe \
    --index-url "$LOCK_INDEX_URL" --no-emit-index-url --output-file "$out" "$@" pyproject.toml
echo "lock: wrote $out ($(grep -c '^[A-Za-z0-9]' "$out") packages)"
