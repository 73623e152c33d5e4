"""End-to-end: a real `xnornet serve` process over loopback HTTP."""

from __future__ import annotations

import base64
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.service.images import jpeg, png
from tests.service.modelgen import write_corrupt, write_version

from .conftest import MODEL, TOKEN, serve

AUTH = {"Authorization": f"Bearer {TOKEN}"}
IMG = {"Content-Type": "image/jpeg"}


def scrape(url: str) -> dict[str, float]:
    out = {}
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    write_version(tmp_path / "repo", MODEL, 1, seed=1)
    return tmp_path / "repo"


def test_classify_v2_and_metrics(repo: Path) -> None:
    with serve(repo, "--max-body-bytes", "65536") as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        assert c.get("/readyz").status_code == 200
        before = scrape(srv.url)
        data = jpeg(640, 480)
        ok = [c.post("/v1/classify", content=data, headers=IMG) for _ in range(4)]
        assert all(r.status_code == 200 for r in ok)
        assert ok[0].json()["predictions"] == ok[3].json()["predictions"]
        multipart = c.post(
            f"/v1/models/{MODEL}/classify?top_k=3", files={"file": ("a.jpg", data, "image/jpeg")}
        )
        assert len(multipart.json()["predictions"]) == 3
        bad = [c.post("/v1/classify", content=b"nope", headers=IMG) for _ in range(2)]
        assert [r.status_code for r in bad] == [415, 415]
        big = c.post("/v1/classify", content=b"x" * 70_000, headers=IMG)
        assert big.status_code == 413 and big.json()["error"]["code"] == "too_large"

        # v2: FP32 tensor and BYTES image agree with /v1 on the same preprocessing
        tensor = c.post(
            f"/v2/models/{MODEL}/infer",
            json={
                "inputs": [
                    {"name": "input", "datatype": "FP32", "shape": [2, 1, 28, 28], "data": [0.5] * (2 * 784)}
                ]
            },
        )
        assert tensor.status_code == 200, tensor.text
        assert tensor.json()["outputs"][0]["shape"] == [2, 10]
        image = c.post(
            f"/v2/models/{MODEL}/versions/1/infer",
            json={
                "id": "r1",
                "inputs": [
                    {
                        "name": "image",
                        "datatype": "BYTES",
                        "shape": [1],
                        "data": [base64.b64encode(data).decode()],
                    }
                ],
            },
        )
        assert image.status_code == 200 and image.json()["id"] == "r1"
        logits = image.json()["outputs"][0]["data"]
        top = max(range(10), key=lambda i: logits[i])
        assert top == ok[0].json()["predictions"][0]["index"]
        assert c.get("/v2/health/ready").status_code == 200

        after = scrape(srv.url)

        def delta(key: str) -> float:
            return after.get(key, 0.0) - before.get(key, 0.0)

        assert delta(f'xnornet_requests_total{{endpoint="/v1/classify",model="{MODEL}",status="200"}}') == 4
        assert (
            delta(
                f'xnornet_requests_total{{endpoint="/v1/models/{{name}}/classify",model="{MODEL}",'
                'status="200"}'
            )
            == 1
        )
        assert delta(f'xnornet_requests_total{{endpoint="/v1/classify",model="{MODEL}",status="415"}}') == 2
        assert delta('xnornet_requests_total{endpoint="/v1/classify",model="",status="413"}') == 1
        assert delta('xnornet_rejected_total{reason="unsupported_type"}') == 2
        assert delta('xnornet_rejected_total{reason="too_large"}') == 1
        # 4 + 1 classify images, 2 + 1 through v2: every image ran through a batch exactly once
        assert delta(f'xnornet_batch_size_sum{{model="{MODEL}"}}') == 8
        assert delta(f'xnornet_preprocess_seconds_count{{model="{MODEL}"}}') == 6
        assert after["xnornet_inflight_requests"] == 0


def test_body_limit_while_streaming(repo: Path) -> None:
    """A chunked upload gets 413 long before the client has sent it all."""
    limit = 1 << 20
    with serve(repo, "--max-body-bytes", str(limit)) as srv:
        u = urlsplit(srv.url)
        sock = socket.create_connection((u.hostname, u.port), timeout=10)
        sock.sendall(
            b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"x" * 65536
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        sent = 0
        sock.settimeout(0.05)
        response = b""
        try:
            while sent < 64 * limit:
                sock.sendall(frame)
                sent += len(chunk)
                try:
                    response += sock.recv(65536)
                except TimeoutError:
                    continue
                if response:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(5)
        try:
            while b"\r\n\r\n" not in response:
                more = sock.recv(65536)
                if not more:
                    break
                response += more
        except (ConnectionResetError, TimeoutError):
            pass
        sock.close()
        assert response.startswith(b"HTTP/1.1 413"), response[:200]
        assert sent < 8 * limit  # refused early, not after reading everything


def test_hot_reload_under_load_and_corrupt_version(repo: Path) -> None:
    with serve(repo, "--max-batch-delay-ms", "2", env={"XNORNET_ADMIN_TOKEN": TOKEN}) as srv:
        stop = threading.Event()
        results: list[tuple[int, str, int, str]] = []
        errors: list[str] = []
        data = png(40, 40)

        def worker() -> None:
            with httpx.Client(base_url=srv.url, timeout=30) as c:
                while not stop.is_set():
                    try:
                        r = c.post("/v1/classify", content=data, headers={"Content-Type": "image/png"})
                        body = r.json()
                        results.append(
                            (
                                r.status_code,
                                r.headers.get("X-Model-Version", ""),
                                body.get("model", {}).get("version", -1),
                                body.get("model", {}).get("sha256"),
                            )
                        )
                    except Exception as exc:  # a failed request is a test failure
                        errors.append(repr(exc))

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            write_version(repo, MODEL, 2, seed=2)
            with httpx.Client(base_url=srv.url, timeout=30, headers=AUTH) as admin:
                r = admin.post(f"/admin/models/{MODEL}/load")
                assert r.status_code == 200 and r.json()["loaded"]["version"] == 2
                time.sleep(0.5)
                write_corrupt(repo, MODEL, 3)
                r = admin.post(f"/admin/models/{MODEL}/load")
                assert r.status_code == 422 and "version 3" in r.json()["error"]["message"]
                time.sleep(0.5)
                listing = admin.get("/admin/models").json()["models"][0]
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        assert not errors
        shas = {v["version"]: v["sha256"] for v in listing["on_disk"]}
        assert listing["served"]["version"] == 2
        statuses = Counter(r[0] for r in results)
        assert statuses == {200: len(results)}, statuses
        versions = Counter(r[1] for r in results)
        assert set(versions) == {"1", "2"}, versions
        for _, header, version, sha in results:
            assert str(version) == header and sha == shas[version]
        # after the switch, every response names version 2 (no flapping back)
        order = [r[1] for r in results]
        assert "1" not in order[order.index("2") + 4 * 2 :]
        assert (
            'xnornet_model_loads_total{model="fashion-mnist-xnor",result="error"} 1.0'
            in httpx.get(srv.url + "/metrics").text
        )
        assert "rejected fashion-mnist-xnor version 3" in srv.output()


def test_polling_and_sighup_reload(repo: Path) -> None:
    with serve(repo, "--poll-seconds", "0.2") as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        write_version(repo, MODEL, 2, seed=2)
        assert wait_for_version(c, "2")
    with serve(repo) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        assert c.post("/v1/classify", content=png()).headers["X-Model-Version"] == "2"
        write_version(repo, MODEL, 3, seed=3)
        time.sleep(0.3)
        assert c.post("/v1/classify", content=png()).headers["X-Model-Version"] == "2"  # no polling
        srv.signal(signal.SIGHUP)
        assert wait_for_version(c, "3")


def wait_for_version(c: httpx.Client, version: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.post("/v1/classify", content=png()).headers.get("X-Model-Version") == version:
            return True
        time.sleep(0.1)
    return False


def test_sigterm_drains(repo: Path) -> None:
    # A long batch delay keeps requests queued when SIGTERM arrives.
    with serve(
        repo,
        "--max-batch-delay-ms",
        "400",
        "--max-batch-size",
        "64",
        "--drain-delay-s",
        "3",  # long enough that /readyz is asked while draining even on a loaded machine
        "--grace-s",
        "10",
    ) as srv:
        results: list[Any] = []

        def one() -> None:
            try:
                r = httpx.post(srv.url + "/v1/classify", content=png(), timeout=30)
                results.append(r.status_code)
            except Exception as exc:
                results.append(repr(exc))

        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        time.sleep(0.15)
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        time.sleep(0.1)
        r = httpx.get(srv.url + "/readyz", timeout=5)
        assert r.status_code == 503 and r.json()["status"] == "draining"
        assert httpx.get(srv.url + "/healthz", timeout=5).status_code == 200
        for t in threads:
            t.join(30)
        code = srv.proc.wait(15)
        elapsed = time.monotonic() - t0
        assert results == [200] * 8, results
        assert code == 0, srv.output()
        assert elapsed < 10


def test_disconnected_client_is_dropped_before_compute(repo: Path) -> None:
    with serve(repo, "--max-batch-delay-ms", "500", "--max-batch-size", "64") as srv:
        before = scrape(srv.url)
        u = urlsplit(srv.url)
        body = png()
        sock = socket.create_connection((u.hostname, u.port), timeout=5)
        sock.sendall(
            b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        time.sleep(0.2)  # preprocessed and queued, waiting for the batch delay
        sock.close()
        time.sleep(0.8)
        after = scrape(srv.url)
        assert (
            after['xnornet_rejected_total{reason="disconnect"}']
            - before['xnornet_rejected_total{reason="disconnect"}']
            == 1
        )
        assert after.get(f'xnornet_batch_size_sum{{model="{MODEL}"}}', 0) == before.get(
            f'xnornet_batch_size_sum{{model="{MODEL}"}}', 0
        )
