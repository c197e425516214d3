"""uvicorn's httptools protocol with a bound on the request head (``keyturn serve``).

httptools buffers a request line and headers of any size: an 8 MB header is
read, joined (quadratically, one chunk at a time) and handed to the app. This
subclass counts the head as it is parsed and, past ``max_header_bytes``, answers
431 ``headers_too_large`` and closes the connection, before the app is called
and with at most the limit plus one socket read held in memory.

The limit is uvicorn's own ``h11_max_incomplete_event_size`` (its bound on an
unfinished request head under h11), so one uvicorn option means the same under
both parsers and travels to ``--workers`` processes with the rest of uvicorn's
configuration. The number of header fields is bounded in the app
(:class:`~keyturn.web.middleware.BodyLimitMiddleware`), which costs one
``len()`` per request.

The count costs a few additions per socket read and per request, never a
call per header:

- every read that ends with the head still unfinished is added up, except the
  read in which the message began (part of it may belong to the previous
  request), so that a single endless header, which httptools reports only once
  it ends, is cut off after at most the limit plus one read;
- when the head is complete, the size of the reads it spans bounds its size;
  only when that bound passes the limit (a read larger than the limit, such as
  a big body arriving with its head) are its URL and headers measured exactly.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from keyturn.errors import HeadersTooLarge

__all__ = ["DEFAULT_MAX_HEADER_BYTES", "HeaderLimitedProtocol"]

#: The bound when uvicorn's ``h11_max_incomplete_event_size`` is not set.
DEFAULT_MAX_HEADER_BYTES = 32 * 1024

#: ``": "`` and CRLF around each header, which the parser reports without them.
_HEADER_OVERHEAD = 4


class _HeadTooLarge(Exception):
    """Raised in a parser callback to stop parsing an oversized head."""


class HeaderLimitedProtocol(HttpToolsProtocol):
    """:class:`uvicorn.protocols.http.httptools_impl.HttpToolsProtocol` that
    answers 431 to a request head larger than ``config.h11_max_incomplete_event_size``
    bytes (see the module doc)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_head_bytes = config.h11_max_incomplete_event_size or DEFAULT_MAX_HEADER_BYTES
        self._read_size = 0  # the read being parsed
        self._messages = 0  # requests begun on this connection
        self._head_bound = 0  # bytes of the reads the current head spans (at least its size)
        self._head_reads = 0  # bytes of reads that were head only, after its first
        self._in_head = False
        self._head_refused = False

    def data_received(self, data: bytes) -> None:
        self._read_size = len(data)
        messages = self._messages
        if self._in_head:  # the head the last read left unfinished goes on here
            self._head_bound += self._read_size
        super().data_received(data)
        if self._in_head and self._messages == messages and not self.transport.is_closing():
            # Still unfinished, and begun in an earlier read: all of this read was head.
            self._head_reads += self._read_size
            if self._head_reads > self.max_head_bytes:
                self._head_refused = True
                self.send_400_response("")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._messages += 1
        self._in_head = True
        self._head_bound = self._read_size
        self._head_reads = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._head_bound > self.max_head_bytes and self._head_size() > self.max_head_bytes:
            self._head_refused = True
            raise _HeadTooLarge()  # httptools reports it as a parser error: see below
        super().on_headers_complete()

    def _head_size(self) -> int:
        """The URL and header bytes of the head just parsed."""
        return len(self.url) + sum(
            len(name) + len(value) + _HEADER_OVERHEAD for name, value in self.headers
        )

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to an unparsable request; 431 for an oversized head."""
        if not self._head_refused:
            super().send_400_response(msg)
            return
        body = json.dumps(
            {
                "error": HeadersTooLarge.code,
                "detail": f"The request headers are larger than {self.max_head_bytes} bytes.",
            }
        ).encode()
        content = [STATUS_LINE[431]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"x-content-type-options: nosniff\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
