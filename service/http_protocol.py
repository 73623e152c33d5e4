"""uvicorn's httptools protocol with a bound on the request head (a security default).

uvicorn's C parser (httptools, with uvloop) takes ~0.4 ms of Python per request off the event
loop, the service's serial bottleneck. But uvicorn bounds the request head only in
its pure-Python h11 protocol (`h11_max_incomplete_event_size`); with httptools a client could
stream headers without limit. This subclass counts the bytes fed to the parser while a head is
being read and answers 431 (in the service's error shape) and closes the connection as soon
as the head would pass `MAX_HEADER_BYTES`. The part of a read beyond the budget is never fed
to the parser, so it never buffers more than the limit. (A head that begins in the middle of a
read, after a pipelined body, may take one more read: the bound h11 gives in every case.)
"""

from __future__ import annotations

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .errors import error_body
from .limits import MAX_HEADER_BYTES


class HeadLimitedHttpToolsProtocol(HttpToolsProtocol):
    max_head_bytes = MAX_HEADER_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # waiting for, or reading, a request head
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        if not self._in_head:
            super().data_received(data)
            return
        budget = self.max_head_bytes - self._head_bytes
        if len(data) <= budget:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # Over budget in this read: feed what the budget allows. If the head completes inside
        # it, the rest is body (or a pipelined request) and is fed as usual.
        self._head_bytes = self.max_head_bytes
        super().data_received(data[:budget])
        if self._in_head:
            self._refuse()
        elif not self.transport.is_closing():
            self.data_received(data[budget:])

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head, self._head_bytes = True, 0
        super().on_message_complete()

    def _refuse(self) -> None:
        if self.transport.is_closing():
            return
        body = json.dumps(
            error_body(
                "",
                "header_too_large",
                f"the request line and headers exceed {self.max_head_bytes} bytes",
            )
        ).encode()
        head = (
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"connection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        self.logger.warning("Request head over %d bytes refused.", self.max_head_bytes)
        self.transport.write(head + body)
        self.transport.close()
