"""A tiny HTTP/1.1 client over a plain socket, for requests no HTTP library will send as
written (dot segments in the path, lying or chunked bodies) and for timing them.
"""

from __future__ import annotations

import json
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float
    sent: int = 0  # body bytes the client managed to send
    notes: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)


def read_response(sock: socket.socket, deadline: float) -> tuple[int, dict[str, str], bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a response head: {buf[:200]!r}")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:length]


def request(
    host: str,
    port: int,
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    timeout: float = 10.0,
) -> Response:
    """One request on a fresh connection, Content-Length set unless headers say otherwise."""
    hdrs = {"Host": f"{host}:{port}", "Connection": "close"}
    hdrs.update(headers or {})
    if "Transfer-Encoding" not in hdrs and "Content-Length" not in hdrs and (body or method == "POST"):
        hdrs["Content-Length"] = str(len(body))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
    t0 = time.monotonic()
    deadline = t0 + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1") + body)
        status, rh, rb = read_response(sock, deadline)
    return Response(status, rh, rb, time.monotonic() - t0, len(body))


def chunked_upload(
    host: str,
    port: int,
    target: str,
    content_type: str,
    total: int,
    *,
    chunk: int = 65536,
    timeout: float = 10.0,
) -> Response:
    """Stream up to `total` bytes as chunked transfer encoding; stop when an answer arrives.

    The server may close (or reset) the connection once it has refused the body; what matters
    is the 413 it sent first and how little of the body it took.
    """
    t0 = time.monotonic()
    deadline = t0 + timeout
    sock = socket.create_connection((host, port), timeout=timeout)
    notes: list[str] = []
    sent = 0
    got = b""
    try:
        sock.sendall(
            f"POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        frame = f"{chunk:x}\r\n".encode() + b"\x00" * chunk + b"\r\n"
        while sent < total and time.monotonic() < deadline:
            if select.select([sock], [], [], 0)[0]:  # an early answer: stop sending
                got = sock.recv(65536)
                break
            sock.sendall(frame)  # blocks while the server is not reading (it must read or close)
            sent += chunk
        if not got and sent >= total:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError, TimeoutError) as exc:
        notes.append(f"send stopped: {type(exc).__name__}")
    try:
        while not _complete(got) and time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            more = sock.recv(65536)
            if not more:
                break
            got += more
    except (ConnectionResetError, TimeoutError) as exc:
        notes.append(f"recv stopped: {type(exc).__name__}")
    finally:
        sock.close()
    head, _, body = got.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    headers = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", len(body)))
    return Response(status, headers, body[:length], time.monotonic() - t0, sent, notes)


def _complete(got: bytes) -> bool:
    head, sep, body = got.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.decode("latin-1").split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            return len(body) >= int(v)
    return True
