"""Static guarantees, read from the source (AST, so comments and strings do not count):

- the service and the engine never unpickle: no pickle/marshal/shelve/dill/joblib import,
  no torch.load, no numpy.load(..., allow_pickle=True);
- they never fetch from the network: no HTTP client or raw socket import (the load generators,
  which are clients by design, live in benchmarks/, outside the served packages; the server
  process never imports them, checked below);
- the admin token is compared in constant time (hmac.compare_digest), never with == / !=.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVED_CODE = ("service", "engine", "xnornet")  # the packages the server process runs
UNPICKLERS = {"pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}
NETWORK = {
    "socket",
    "ssl",
    "http.client",
    "urllib.request",
    "urllib3",
    "requests",
    "httpx",
    "aiohttp",
    "ftplib",
    "smtplib",
    "xmlrpc.client",
    "websockets",
}


def sources() -> Iterator[tuple[str, ast.Module]]:
    for pkg in SERVED_CODE:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            yield rel, ast.parse(path.read_text(), filename=rel)


def imported_modules(tree: ast.Module) -> Iterator[tuple[str, int]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
            for alias in node.names:  # from urllib import request
                yield f"{node.module}.{alias.name}", node.lineno


def matches(module: str, banned: set[str]) -> bool:
    return any(module == b or module.startswith(b + ".") for b in banned)


def dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def test_sources_are_found() -> None:
    names = [rel for rel, _ in sources()]
    assert "service/app.py" in names and "engine/model.py" in names and "service/api/admin.py" in names


def test_never_unpickles() -> None:
    found = []
    for rel, tree in sources():
        found += [f"{rel}:{line} imports {m}" for m, line in imported_modules(tree) if matches(m, UNPICKLERS)]
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = dotted(node.func)
            if name.endswith("torch.load"):
                found.append(f"{rel}:{node.lineno} calls {name}")
            if name in ("np.load", "numpy.load") and any(
                kw.arg == "allow_pickle"
                and not (isinstance(kw.value, ast.Constant) and kw.value.value is False)
                for kw in node.keywords
            ):
                found.append(f"{rel}:{node.lineno} calls {name} with allow_pickle")
    assert not found, found


# The one served module allowed a raw socket: it binds the listening socket that the
# `--workers` processes share, and (checked below) never connects anywhere.
LISTENING_SOCKET_OWNERS = {("service/workers.py", "socket")}
CLIENT_CALLS = {"connect", "connect_ex", "create_connection", "urlopen", "sendto"}


def test_never_fetches_from_the_network() -> None:
    found = [
        f"{rel}:{line} imports {m}"
        for rel, tree in sources()
        for m, line in imported_modules(tree)
        if matches(m, NETWORK) and (rel, m) not in LISTENING_SOCKET_OWNERS
    ]
    for rel, tree in sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and dotted(node.func).rsplit(".", 1)[-1] in CLIENT_CALLS:
                found.append(f"{rel}:{node.lineno} calls {dotted(node.func)}")
    assert not found, found


def test_the_server_process_imports_no_http_client(tmp_path: Path) -> None:
    """What the running server has imported (its module closure, dynamic imports included)."""
    code = f"""
import json, sys
from service.server import make_server
from service.settings import Settings
make_server(Settings(repository={str(tmp_path)!r}, port=0))
print(json.dumps(sorted(sys.modules)))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    modules = set(json.loads(out.stdout.strip().splitlines()[-1]))
    clients = {"requests", "httpx", "urllib3", "aiohttp", "websockets"}
    assert not modules & clients, modules & clients
    assert not {m for m in modules if m.split(".")[0] == "benchmarks"}
    assert "torch" not in modules


def test_admin_token_compared_in_constant_time() -> None:
    rel = "service/api/admin.py"
    tree = ast.parse((ROOT / rel).read_text())
    calls = {dotted(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert calls & {"hmac.compare_digest", "secrets.compare_digest", "compare_digest"}, calls
    # and no ==/!= anywhere near a token or the Authorization value
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
            names = {dotted(x) for x in [node.left, *node.comparators]} | {
                n.id for x in [node.left, *node.comparators] for n in ast.walk(x) if isinstance(n, ast.Name)
            }
            assert not any("token" in n.lower() or n in ("given", "authorization") for n in names), (
                f"{rel}:{node.lineno} compares a secret with =="
            )


@pytest.mark.parametrize("pattern", ["eval(", "exec(", "subprocess", "os.system", "yaml.load("])
def test_no_dynamic_code_in_the_request_path(pattern: str) -> None:
    """The request path (app, routers, imaging, batching) runs no code from data."""
    request_path = [
        "service/app.py",
        "service/imaging.py",
        "service/batcher.py",
        "service/inference.py",
        "service/repository.py",
        "service/runtime.py",
        "service/limits.py",
        "service/edge.py",
        "service/cluster.py",
        "service/errors.py",
        *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "service/api").glob("*.py")),
    ]
    for rel in request_path:
        tree = ast.parse((ROOT / rel).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = dotted(node.func)
                assert name + "(" != pattern and name != pattern and not name.startswith(pattern + "."), (
                    f"{rel}:{node.lineno}: {name}"
                )
            if isinstance(node, (ast.Import, ast.ImportFrom)) and pattern == "subprocess":
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert "subprocess" not in mods, f"{rel}:{node.lineno}"
