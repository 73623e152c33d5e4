"""A loopback HTTP file server for the pull tests: Range requests, and faults on demand.

Faults (set on the server object between requests):
    cut_after   the first `cuts` responses end (the socket is closed) after this many body bytes
    delay       seconds to sleep between 16 KiB blocks (a slow server)
    missing     paths answered 404
    ignore_range  answer 200 with the whole file even to a Range request
Every request's path and Range header is recorded in `requests`.
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class FileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.cut_after: int | None = None
        self.cuts = 0
        self.delay = 0.0
        self.missing: set[str] = set()
        self.ignore_range = False
        self.requests: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()
        self.scheme = "http"

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


class _Handler(BaseHTTPRequestHandler):
    server: FileServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        srv = self.server
        path = self.path.split("?")[0]  # absolute ("http://host/file") when asked as a proxy
        rng = self.headers.get("Range")
        with srv.lock:
            srv.requests.append((path, rng))
            cut = None
            if srv.cut_after is not None and srv.cuts > 0:
                srv.cuts -= 1
                cut = srv.cut_after
        file = srv.root / urllib.parse.urlsplit(path).path.lstrip("/")
        if path in srv.missing or not file.is_file():
            body = b"not found"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        data = file.read_bytes()
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and not srv.ignore_range:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        limit = len(body) if cut is None else min(cut, len(body))
        for i in range(0, limit, 16384):
            self.wfile.write(body[i : min(i + 16384, limit)])
            self.wfile.flush()
            if srv.delay:
                time.sleep(srv.delay)
        if cut is not None:
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True


@contextmanager
def serving(root: Path, tls: tuple[Path, Path] | None = None) -> Iterator[FileServer]:
    """Serve `root`; with tls=(certificate, key), over HTTPS."""
    srv = FileServer(root)
    if tls is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*tls)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        srv.scheme = "https"
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
