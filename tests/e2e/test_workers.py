"""`xnornet serve --workers 2`: two real server processes behind one port, on loopback.

Which worker accepts a connection is the kernel's choice, so these tests never assume one: they
read what every worker agrees on. /metrics (any worker answers) sums over all workers, and its
xnornet_model_info shows a version while *any* live worker serves it, so "exactly one series,
the new version" means every worker switched; xnornet_model_loads_total counts each worker's
loads, so an admin load that reached every worker adds 2.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from tests.service.images import png
from tests.service.modelgen import write_version

from .conftest import MODEL, TOKEN, Server, serve

AUTH = {"Authorization": f"Bearer {TOKEN}"}
PNG = {"Content-Type": "image/png"}
WORKERS = 2


def scrape(url: str) -> dict[str, float]:
    out = {}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def served_versions(metrics: dict[str, float]) -> set[str]:
    """The versions of MODEL in xnornet_model_info (any live worker serving one shows it)."""
    out = set()
    for key, value in metrics.items():
        m = re.match(r'xnornet_model_info\{.*model="([^"]+)".*version="(\d+)"', key)
        if m and m.group(1) == MODEL and value == 1:
            out.add(m.group(2))
    return out


def loads_ok(metrics: dict[str, float]) -> float:
    return metrics.get(f'xnornet_model_loads_total{{model="{MODEL}",result="ok"}}', 0.0)


def eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the workers did not converge"
        time.sleep(0.1)


def worker_pids(srv: Server) -> list[int]:
    return [int(p) for p in re.findall(r"Started server process \[(\d+)\]", srv.output())]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    write_version(tmp_path / "repo", MODEL, 1, seed=1)
    return tmp_path / "repo"


def _workers(repo: Path, *args: str) -> AbstractContextManager[Server]:
    return serve(repo, "--workers", str(WORKERS), *args, env={"XNORNET_ADMIN_TOKEN": TOKEN})


def test_two_workers_share_the_port_and_sum_their_metrics(repo: Path) -> None:
    with _workers(repo) as srv:
        assert len(worker_pids(srv)) == WORKERS
        ready = httpx.get(srv.url + "/readyz")
        assert ready.status_code == 200 and ready.json()["workers"] == {"ready": 2, "total": 2}
        assert loads_ok(scrape(srv.url)) == WORKERS  # one start-up load per worker, summed
        before = scrape(srv.url)
        body = png(64, 64, "RGB")
        n = 40
        for _ in range(n):  # a fresh connection each: the kernel spreads them over the workers
            r = httpx.post(srv.url + "/v1/classify", content=body, headers={**PNG, "Connection": "close"})
            assert r.status_code == 200, r.text
        key = f'xnornet_requests_total{{endpoint="/v1/classify",model="{MODEL}",status="200"}}'
        for _ in range(5):  # whichever worker answers the scrape reports the sum
            after = scrape(srv.url)
            assert after[key] - before.get(key, 0.0) == n
            assert after["xnornet_inflight_requests"] <= 1.0  # livesum: only the scrape itself
            assert after[f'xnornet_preprocess_seconds_count{{model="{MODEL}"}}'] >= n
        assert not any(k.startswith("process_cpu") for k in after)  # per-process: left out


def _sockets_by_pid(port: int, pids: list[int], state: str) -> dict[int, set[str]]:
    """The inodes of the TCP sockets on local `port` in `state` ("01" established, "0A"
    listening) that each of `pids` holds (Linux /proc)."""
    inodes = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            for row in f.readlines()[1:]:
                cols = row.split()
                if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == state:
                    inodes.add(cols[9])
    out: dict[int, set[str]] = {}
    for pid in pids:
        out[pid] = set()
        for fd in glob.glob(f"/proc/{pid}/fd/*"):
            with contextlib.suppress(OSError):
                m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
                if m and m.group(1) in inodes:
                    out[pid].add(m.group(1))
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_keep_alive_connections_spread_over_the_workers(repo: Path) -> None:
    """32 keep-alive connections opened in one burst, as a load generator opens them, then one
    request on each, five times: each worker holds a fair share every time. With one listening
    socket shared by the workers, whichever woke first accepted most of a burst (splits of 31 to
    1 were seen, about every other burst); with each worker's own SO_REUSEPORT socket a split
    below 6 of 32 is a ~1e-4 event per burst (binomial, p = 1/2)."""
    n = 32
    body = png(32, 32, "RGB")
    with _workers(repo) as srv:
        host, port = srv.address
        listening = _sockets_by_pid(port, worker_pids(srv), "0A").values()
        assert [len(x) for x in listening] == [1, 1] and len(set.union(*listening)) == 2  # one each
        request = (
            f"POST /v1/classify HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/png\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        for _ in range(5):  # a burst may find both workers idle and split fairly by chance
            conns = [socket.create_connection((host, port), timeout=30) for _ in range(n)]
            try:
                for c in conns:
                    c.sendall(request)
                for c in conns:
                    head = b""
                    while b"\r\n\r\n" not in head:
                        chunk = c.recv(65536)
                        assert chunk, "the server closed the connection"
                        head += chunk
                    assert head.startswith(b"HTTP/1.1 200"), head[:200]
                held = [len(x) for x in _sockets_by_pid(port, worker_pids(srv), "01").values()]
                assert sum(held) == n and min(held) >= 6, held
            finally:
                for c in conns:
                    c.close()
            time.sleep(0.5)  # the closed connections leave ESTABLISHED


def test_admin_and_sighup_reach_every_worker(repo: Path) -> None:
    with _workers(repo) as srv:
        url = srv.url
        loads0 = loads_ok(scrape(url))
        r = httpx.post(f"{url}/admin/models/{MODEL}/unload", headers=AUTH)
        assert r.status_code == 200, r.text
        eventually(lambda: served_versions(scrape(url)) == set())  # no worker serves it
        for _ in range(10):
            r = httpx.post(url + "/v1/classify", content=png(32, 32), headers={**PNG, "Connection": "close"})
            assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"

        write_version(repo, MODEL, 2, seed=2)
        r = httpx.post(f"{url}/admin/models/{MODEL}/load", headers=AUTH, json={"version": 1})
        assert r.status_code == 200 and r.json()["loaded"]["version"] == 1
        eventually(lambda: served_versions(scrape(url)) == {"1"} and loads_ok(scrape(url)) == loads0 + 2)

        # SIGHUP to the supervisor: every worker re-reads the repository (version 1 is pinned)
        write_version(repo, MODEL, 3, seed=3)
        r = httpx.post(f"{url}/admin/models/{MODEL}/load", headers=AUTH, json={})  # unpin: highest
        assert r.status_code == 200 and r.json()["loaded"]["version"] == 3
        eventually(lambda: served_versions(scrape(url)) == {"3"})
        write_version(repo, MODEL, 4, seed=4)
        srv.signal(signal.SIGHUP)
        eventually(lambda: served_versions(scrape(url)) == {"4"})
        assert httpx.get(url + "/readyz").status_code == 200


def test_concurrent_admin_calls_converge(repo: Path) -> None:
    """Loads of different versions racing at both workers: all end on the log's last one."""
    write_version(repo, MODEL, 2, seed=2)
    with _workers(repo) as srv:
        url = srv.url
        errors: list[str] = []

        def admin(version: int) -> None:
            for _ in range(4):
                r = httpx.post(
                    f"{url}/admin/models/{MODEL}/load",
                    headers={**AUTH, "Connection": "close"},
                    json={"version": version},
                    timeout=30,
                )
                if r.status_code != 200:
                    errors.append(r.text)

        threads = [threading.Thread(target=admin, args=(v,)) for v in (1, 2, 1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        eventually(lambda: len(served_versions(scrape(url))) == 1)
        final = served_versions(scrape(url))
        time.sleep(1.0)  # settled: no worker moves afterwards
        assert served_versions(scrape(url)) == final


def test_a_dead_worker_is_not_ready_until_restarted_and_replays_the_log(repo: Path) -> None:
    with _workers(repo) as srv:
        url = srv.url
        assert httpx.post(f"{url}/admin/models/{MODEL}/unload", headers=AUTH).status_code == 200
        eventually(lambda: served_versions(scrape(url)) == set())
        victim = worker_pids(srv)[0]
        os.kill(victim, signal.SIGKILL)
        eventually(lambda: httpx.get(url + "/readyz").status_code == 503, timeout=10)
        eventually(lambda: httpx.get(url + "/readyz").status_code == 200, timeout=60)
        assert len(worker_pids(srv)) == WORKERS + 1  # the restarted one
        # it loaded the model at start, then replayed the unload from the log
        eventually(lambda: served_versions(scrape(url)) == set())


def test_sigterm_drains_every_worker_and_cleans_up(repo: Path) -> None:
    """Clients on keep-alive connections (each answered once, so a worker holds it) stream
    requests; SIGTERM to the supervisor. Every request answered is a 200 (a connection closed
    between requests by a draining worker is allowed), /readyz turns 503 while the workers still
    serve, every worker exits, the supervisor exits 0 and its private directory is gone."""
    before = set(glob.glob(str(Path(tempfile.gettempdir()) / "xnornet-workers-*")))
    statuses: list[int] = []
    clients = 8
    connected = threading.Barrier(clients + 1)
    with _workers(repo, "--grace-s", "10", "--drain-delay-s", "1") as srv:
        body = png(64, 64, "RGB")

        def client() -> None:
            with httpx.Client(base_url=srv.url, timeout=30) as c:
                statuses.append(c.post("/v1/classify", content=body, headers=PNG).status_code)
                connected.wait(30)
                for _ in range(20):
                    try:
                        statuses.append(c.post("/v1/classify", content=body, headers=PNG).status_code)
                    except httpx.TransportError:
                        return  # closed between requests by a draining worker

        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        connected.wait(30)
        srv.signal(signal.SIGTERM)
        time.sleep(0.2)
        with httpx.Client(base_url=srv.url, timeout=10) as probe:
            assert probe.get("/readyz").status_code == 503  # draining, still answering
        for t in threads:
            t.join()
        assert srv.proc.wait(30) == 0, srv.output()[-3000:]
    assert len(statuses) > clients and all(s == 200 for s in statuses), statuses
    assert srv.output().count("Finished server process") == WORKERS
    assert set(glob.glob(str(Path(tempfile.gettempdir()) / "xnornet-workers-*"))) <= before
