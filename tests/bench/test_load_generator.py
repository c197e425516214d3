"""The asyncio load generator and its HTTP/1.1 client, against a tiny local server.

``keyturn bench`` falls back to this generator when ``wrk`` is not installed, and
its probes, sign-in storm, revocation polls and memory fills always use the client,
so both must read every kind of response a server may send and count failures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from tests.support import serve_in_thread

from keyturn.bench.load import run_load
from keyturn.bench.loadgen import closed_loop, probe
from keyturn.bench.wire import Connection, Target

BODY = b'{"status":"ok"}'


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless told otherwise

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b'{"sta', b'tus":"ok"}'):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        status = 401 if self.path == "/denied" else 200
        self.send_response(status)
        self.send_header("Content-Length", str(len(BODY)))
        if self.path == "/close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(BODY)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve_in_thread(Handler) as origin:
        yield origin


def test_python_generator_runs_in_its_own_process_and_reports(base_url: str) -> None:
    """--tool python: req/s and percentiles from the separate generator process."""
    result = run_load(f"{base_url}/ok", connections=4, duration=0.5, cpu=None, tool="python")
    assert result.tool == "python-asyncio"
    assert result.requests > 0
    assert result.requests_per_s > 0
    assert result.errors == 0
    assert 0 < result.p50 <= result.p99


def test_error_answers_are_counted(base_url: str) -> None:
    """Every 4xx answer is an error, so a rejected credential cannot pass as speed."""
    outcome = asyncio.run(closed_loop(f"{base_url}/denied", {}, 2, 0.3))
    assert len(outcome.latencies_ms) > 0
    assert outcome.errors == len(outcome.latencies_ms)


def test_connection_reads_chunked_and_closing_responses(base_url: str) -> None:
    """Chunked bodies are reassembled; after Connection: close the next request
    opens a new connection by itself."""

    async def exchange() -> list[tuple[int, bytes]]:
        connection = Connection(Target.parse(base_url + "/"), timeout=5.0)
        try:
            replies = [
                await connection.request("GET", path) for path in ("/chunked", "/close", "/ok")
            ]
        finally:
            await connection.close()
        return [(reply.status, reply.body) for reply in replies]

    assert asyncio.run(exchange()) == [(200, BODY)] * 3


def test_probe_keeps_its_rate_and_reports_failures(base_url: str) -> None:
    """The open-loop probe sends rate x seconds requests; unexpected statuses fail."""
    latencies, failures = asyncio.run(probe(f"{base_url}/ok", {}, 50, 0.4))
    assert len(latencies) == 20 and failures == 0
    latencies, failures = asyncio.run(probe(f"{base_url}/denied", {}, 50, 0.2))
    assert failures == 10
