"""Clients that leave cost no compute, against a real server process.

- mid-upload (raw body and multipart): the body never completes, so nothing is decoded or run;
  the request is counted as xnornet_rejected_total{reason="disconnect"} and status 499, not
  as a 500 with a traceback in the log (fixed in service/errors.py for this issue).
- while queued: decoded, then dropped from the batch queue before the engine sees it (the
  basic case is tests/e2e/test_server.py::test_disconnected_client_is_dropped_before_compute;
  here the inference metrics and the log are checked too, and the next batch still runs).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import serve
from tests.service.images import png
from tests.service.modelgen import write_version

from .conftest import metric_sum, parse_metrics

MODEL = "fashion-mnist-xnor"
DISCONNECT = 'xnornet_rejected_total{reason="disconnect"}'
COMPUTE = (  # every series that moves when an image is decoded or run by the engine
    "xnornet_preprocess_seconds_count",
    "xnornet_batch_size_count",
    "xnornet_inference_seconds_count",
    "xnornet_queue_wait_seconds_count",
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    write_version(tmp_path / "repo", MODEL, 1, seed=1)
    return tmp_path / "repo"


def scrape(url: str) -> dict[str, float]:
    return parse_metrics(httpx.get(url + "/metrics", timeout=5).text)


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def status_count(m: dict[str, float], status: str) -> float:
    return sum(
        v for k, v in m.items() if k.startswith("xnornet_requests_total") and f'status="{status}"' in k
    )


def test_clients_that_leave_cost_no_compute(repo: Path) -> None:
    # A long batch delay keeps a lone request queued long enough to leave while it waits.
    with serve(repo, "--max-batch-delay-ms", "800", "--max-batch-size", "64") as srv:
        u = urlsplit(srv.url)
        host, port = u.hostname, u.port
        assert host == "127.0.0.1" and port
        image = png(28, 28, "L")

        def leave_mid_upload(head: bytes, partial: bytes) -> None:
            before = scrape(srv.url)
            sock = socket.create_connection((host, port), timeout=5)
            sock.sendall(head + partial)
            time.sleep(0.2)  # the app is reading the body
            sock.close()
            assert wait_for(lambda: scrape(srv.url)[DISCONNECT] == before[DISCONNECT] + 1), srv.output()[
                -2000:
            ]
            after = scrape(srv.url)
            for name in COMPUTE:
                assert metric_sum(after, name) == metric_sum(before, name), name
            assert status_count(after, "500") == status_count(before, "500")
            assert status_count(after, "499") == status_count(before, "499") + 1

        # raw body: 100 kB announced, 5 kB sent
        leave_mid_upload(
            b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"Content-Length: 100000\r\n\r\n",
            image[:100] + b"\0" * 4900,
        )
        # multipart: the part's headers and half a file, no closing boundary
        part = (
            b'--XB\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + image[: len(image) // 2]
        )
        leave_mid_upload(
            b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XB\r\n"
            b"Content-Length: 50000\r\n\r\n",
            part,
        )

        # while queued: the whole body, decoded, waiting for the 800 ms batch delay
        before = scrape(srv.url)
        sock = socket.create_connection((host, port), timeout=5)
        sock.sendall(
            b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            + f"Content-Length: {len(image)}\r\n\r\n".encode()
            + image
        )
        assert wait_for(lambda: scrape(srv.url).get(f'xnornet_queue_depth{{model="{MODEL}"}}') == 1.0, 3)
        sock.close()
        assert wait_for(lambda: scrape(srv.url)[DISCONNECT] == before[DISCONNECT] + 1)
        time.sleep(1.0)  # past the batch delay: a batch would have run by now
        after = scrape(srv.url)
        assert (
            metric_sum(after, "xnornet_preprocess_seconds_count")
            == metric_sum(before, "xnornet_preprocess_seconds_count") + 1
        )  # decoded (the body was complete) ...
        for name in COMPUTE[1:]:  # ... but never batched nor run
            assert metric_sum(after, name) == metric_sum(before, name), name
        assert after[f'xnornet_queue_depth{{model="{MODEL}"}}'] == 0.0

        # the worker is unharmed: the next request runs in a batch of its own
        r = httpx.post(
            srv.url + "/v1/classify", content=image, headers={"Content-Type": "image/png"}, timeout=10
        )
        assert r.status_code == 200, r.text
        final = scrape(srv.url)
        assert (
            metric_sum(final, "xnornet_batch_size_count") == metric_sum(after, "xnornet_batch_size_count") + 1
        )
        assert httpx.get(srv.url + "/healthz", timeout=5).status_code == 200
    log = srv.output()
    assert "Traceback" not in log, log[-3000:]
    assert "never retrieved" not in log, log[-3000:]
