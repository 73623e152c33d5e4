"""The 16 KiB request-head limit with uvicorn's httptools protocol (service/http_protocol.py),
over the wire against a real `xnornet serve`: a head over the limit gets 431 in the service's
error shape whether it arrives in one read or dribbles in, a head under it is served, body bytes
of a keep-alive connection never count as head bytes, and the server carries on.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from service.limits import MAX_HEADER_BYTES
from tests.e2e.conftest import serve
from tests.hostile.rawhttp import read_response, request
from tests.service.modelgen import write_version

MODEL = "fashion-mnist-xnor"
pytest.importorskip("httptools")


def test_server_uses_the_head_limited_httptools_protocol() -> None:
    from service.http_protocol import HeadLimitedHttpToolsProtocol
    from service.server import make_server
    from service.settings import Settings

    cfg = make_server(Settings(port=0)).config
    assert cfg.http is HeadLimitedHttpToolsProtocol
    assert HeadLimitedHttpToolsProtocol.max_head_bytes == MAX_HEADER_BYTES == 16 * 1024


def noisy_png(w: int, h: int) -> bytes:
    """A PNG that does not compress: its body is surely larger than the head limit."""
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def _raw(host: str, port: int, data: bytes, pieces: int = 1) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection((host, port), timeout=10) as sock:
        step = -(-len(data) // pieces)
        try:
            for i in range(0, len(data), step):
                sock.sendall(data[i : i + step])
                if pieces > 1:
                    time.sleep(0.002)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-send: the answer is already waiting
        return read_response(sock, time.monotonic() + 10)


def test_head_limit_over_the_wire(tmp_path: Path, engine_ready: None) -> None:
    repo = tmp_path / "repo"
    write_version(repo, MODEL, 1, seed=1)
    with serve(repo, "--default-model", MODEL) as srv:
        u = urlsplit(srv.url)
        host, port = u.hostname or "127.0.0.1", int(u.port or 0)

        def head(extra: int) -> bytes:
            return (
                f"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: {'a' * extra}\r\n\r\n"
            ).encode()

        # Just under the limit: served.
        under = head(MAX_HEADER_BYTES - 200)
        assert len(under) < MAX_HEADER_BYTES
        status, _, _ = _raw(host, port, under)
        assert status == 200

        # Just over, in one read and dribbled in 64 pieces: 431 with the JSON error shape.
        over = head(MAX_HEADER_BYTES + 10)
        for pieces in (1, 64):
            status, headers, body = _raw(host, port, over, pieces)
            assert status == 431, (pieces, status)
            assert json.loads(body)["error"]["code"] == "header_too_large"
            assert headers.get("connection") == "close"

        # Far over (1 MiB): refused without reading it all.
        status, _, _ = _raw(host, port, head(1 << 20), pieces=16)
        assert status == 431

        # Keep-alive: a body larger than the head limit, then another request on the same
        # connection. Body bytes are not head bytes.
        image = noisy_png(128, 128)
        assert len(image) > MAX_HEADER_BYTES
        post = (
            f"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            f"Content-Length: {len(image)}\r\n\r\n"
        ).encode() + image
        with socket.create_connection((host, port), timeout=10) as sock:
            for _ in range(3):
                sock.sendall(post)
                status, _, body = read_response(sock, time.monotonic() + 10)
                assert status == 200, body[:200]
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            status, _, _ = read_response(sock, time.monotonic() + 10)
            assert status == 200

        assert request(host, port, "GET", "/healthz").status == 200
    log = srv.output()
    assert "Traceback" not in log, log[-3000:]
