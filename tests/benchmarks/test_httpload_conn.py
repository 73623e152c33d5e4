"""benchmarks.httpload.Conn replaces a keep-alive connection the server may already have closed
for idleness, instead of losing the next request on it (EOF, no status)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from benchmarks.httpload import Conn

SERVER_IDLE_S = 0.3
RAW = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"


async def _idle_closing_server() -> asyncio.Server:
    """Answers each request 200 and closes a connection idle for SERVER_IDLE_S, as uvicorn does."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.TimeoutError, asyncio.IncompleteReadError, OSError):
            while True:
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), SERVER_IDLE_S)
                await reader.readexactly(2)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _two_requests(idle_s: float) -> tuple[int, int]:
    server = await _idle_closing_server()
    port = server.sockets[0].getsockname()[1]
    conn = Conn("127.0.0.1", port, idle_s=idle_s)
    try:
        first = (await conn.request(RAW))[0]
        await asyncio.sleep(SERVER_IDLE_S + 0.2)
        second = (await conn.request(RAW))[0]
        return first, second
    finally:
        await conn.aclose()
        server.close()
        await server.wait_closed()


def test_idle_connection_is_replaced_before_use() -> None:
    assert asyncio.run(_two_requests(idle_s=SERVER_IDLE_S / 3)) == (200, 200)


def test_reusing_a_connection_the_server_closed_loses_the_request() -> None:
    """The race the idle bound avoids (why it exists): without it the request gets EOF."""
    with pytest.raises(asyncio.IncompleteReadError):
        asyncio.run(_two_requests(idle_s=60.0))
