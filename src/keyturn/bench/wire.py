"""A minimal asyncio HTTP/1.1 client for load generation on loopback.

General-purpose clients spend more CPU per request than a small server does to
answer it, so on a two-CPU machine they measure themselves. This one keeps a
connection alive, writes pre-built request bytes and reads exactly one response
(``Content-Length`` or chunked), and nothing else: no redirects, no cookies jar,
no TLS, no proxies. It only ever connects to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from keyturn.bench.errors import BenchError

__all__ = ["Connection", "Reply", "Target", "build_request"]

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Target:
    """Where requests go: a loopback host and port, and a path."""

    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> Target:
        """``http://127.0.0.1:PORT/path`` into its parts.

        Raises:
            BenchError: not plain HTTP, or not a loopback address.
        """
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise BenchError(f"the load generator speaks plain http:// only, not {url!r}")
        if parts.hostname not in _LOOPBACK_HOSTS:
            raise BenchError(f"benchmarks only send traffic to loopback, not {parts.hostname}")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return cls(parts.hostname, parts.port or 80, path)


@dataclass(frozen=True)
class Reply:
    """One response: status, headers (names lower-cased) and body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)


def build_request(
    target: Target,
    method: str = "GET",
    path: str | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> bytes:
    """The bytes of one HTTP/1.1 request (keep-alive)."""
    lines = [f"{method} {path or target.path} HTTP/1.1", f"Host: {target.host}:{target.port}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method not in ("GET", "HEAD", "DELETE"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    """One keep-alive connection; reconnects by itself after the server closes.

    With ``timeout`` (seconds), a request that has not been answered in time
    raises :class:`TimeoutError` (an :class:`OSError`) and the connection is
    closed: a stalled server fails a benchmark step instead of hanging it. Hot
    loops leave it ``None`` and bound their whole run instead.
    """

    def __init__(self, target: Target, *, timeout: float | None = None) -> None:
        self.target = target
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def local_port(self) -> int | None:
        """This side's port while connected (so the server's socket can be
        found, e.g. which worker owns it), else None."""
        if self._writer is None:
            return None
        return int(self._writer.get_extra_info("sockname")[1])

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                self.target.host, self.target.port
            )
        return self._reader, self._writer

    async def send(self, request: bytes, *, head: bool = False) -> Reply:
        """Send pre-built ``request`` bytes and read the whole response.

        Raises:
            OSError, asyncio.IncompleteReadError: the connection failed or timed
                out (it is closed; the next call opens a new one).
        """
        try:
            if self.timeout is None:  # the hot loop: no timer per request
                reply, keep_alive = await self._exchange(request, head)
            else:
                async with asyncio.timeout(self.timeout):
                    reply, keep_alive = await self._exchange(request, head)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            await self.close()
            raise
        if not keep_alive:
            await self.close()
        return reply

    async def _exchange(self, request: bytes, head: bool) -> tuple[Reply, bool]:
        reader, writer = await self._open()
        writer.write(request)
        return await _read_reply(reader, head=head)

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> Reply:
        """Build and send one request."""
        raw = build_request(self.target, method, path, headers, body)
        return await self.send(raw, head=method == "HEAD")

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()


async def _read_reply(reader: asyncio.StreamReader, *, head: bool) -> tuple[Reply, bool]:
    raw_head = await reader.readuntil(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ValueError(f"not an HTTP/1.x response: {lines[0]!r}")
    status = int(parts[1])
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
    fields = dict(headers)
    keep_alive = fields.get("connection", "").lower() != "close" and parts[0] == "HTTP/1.1"
    if head or status in (204, 304) or 100 <= status < 200:
        return Reply(status, headers, b""), keep_alive
    if "chunked" in fields.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in fields:
        body = await reader.readexactly(int(fields["content-length"]))
    else:  # delimited by the end of the connection
        body = await reader.read()
        keep_alive = False
    return Reply(status, headers, body), keep_alive


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return b"".join(chunks)
        chunks.append((await reader.readexactly(size + 2))[:-2])
