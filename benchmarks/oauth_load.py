"""Load on keyturn's OAuth endpoints, the way a client calls them: POSTs of
``application/x-www-form-urlencoded`` bodies over keep-alive connections.

Used by ``benchmarks/token_endpoint.py`` and ``benchmarks/soak.py``. The client is
:class:`keyturn.bench.wire.Connection` (a small asyncio HTTP/1.1 client that spends
little CPU per request), in the calling thread, which the caller pins to the load
generator's CPU. Every loop is bounded by its duration; traffic goes to 127.0.0.1
only (``Target.parse`` refuses anything else).

* :func:`refresh_chains`: ``chains`` refresh families, each on its own connection,
  each refreshing its latest refresh token back to back (a chain is sequential:
  the next refresh needs the previous answer).
* :func:`closed_loop_posts`: ``connections`` connections sending the same
  pre-built POST back to back (introspection).
* :func:`password_grants`: ``connections`` connections signing in back to back
  with the password grant, one user each.
* :func:`cpu_seconds`: user + system CPU a process has used, to show that a
  measured server was busy (a per-vCPU figure needs a saturated server);
  :func:`measured` runs a load on the client's CPU and returns it as a
  :class:`Figure` with the server's CPU use meanwhile.
* :func:`password_grant` and :func:`fresh_families`: credentials made through
  the password grant, the way a client gets them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from keyturn.bench.accounts import PASSWORD
from keyturn.bench.errors import BenchError
from keyturn.bench.machine import CLIENT_CPU, pinned
from keyturn.bench.servers import KeyturnServer
from keyturn.bench.stats import latency_percentiles
from keyturn.bench.wire import Connection, Target, build_request

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
TOKEN_PATH = "/oauth/token"
INTROSPECT_PATH = "/oauth/introspect"

#: Seconds one request may take before it counts as an error (and the loop moves on).
REQUEST_TIMEOUT = 30.0


@dataclass
class Outcome:
    """What one load run did: successes with their latencies, and errors."""

    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""

    @property
    def per_s(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def percentile(self, pct: int) -> float:
        return latency_percentiles(self.latencies_ms).get(pct, float("nan"))

    def fail(self, message: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or message


def form(**fields: str) -> bytes:
    """An urlencoded body."""
    return urlencode(fields).encode()


def basic(client_id: str, secret: str) -> dict[str, str]:
    """The ``Authorization: Basic`` header of a confidential client (RFC 6749 2.3.1)."""
    pair = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


async def _post(
    conn: Connection, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    reply = await conn.request("POST", path, headers={**FORM, **headers}, body=body)
    return reply.status, reply.body


async def refresh_chains(url: str, refresh_tokens: Sequence[str], seconds: float) -> Outcome:
    """One chain per refresh token, concurrently, for ``seconds``; each chain stops
    at its first error (its family may be gone)."""
    target = Target.parse(url)
    outcome = Outcome()
    deadline = time.perf_counter() + seconds

    async def chain(token: str) -> None:
        conn = Connection(target, timeout=REQUEST_TIMEOUT)
        try:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    status, body = await _post(
                        conn, TOKEN_PATH, form(grant_type="refresh_token", refresh_token=token), {}
                    )
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    outcome.fail(f"refresh: {exc!r}")
                    return
                if status != 200:
                    outcome.fail(f"refresh: {status} {body[:120]!r}")
                    return
                outcome.latencies_ms.append((time.perf_counter() - start) * 1000)
                token = json.loads(body)["refresh_token"]
        finally:
            await conn.close()

    begin = time.perf_counter()
    await asyncio.gather(*(chain(token) for token in refresh_tokens))
    outcome.seconds = time.perf_counter() - begin
    return outcome


async def closed_loop_posts(
    url: str,
    body: bytes,
    headers: dict[str, str],
    connections: int,
    seconds: float,
    *,
    expect: bytes,
) -> Outcome:
    """The same POST from ``connections`` connections for ``seconds``; an answer
    other than 200 whose body contains ``expect`` is an error."""
    target = Target.parse(url)
    raw = build_request(target, "POST", None, {**FORM, **headers}, body)
    outcome = Outcome()
    deadline = time.perf_counter() + seconds

    async def loop() -> None:
        conn = Connection(target, timeout=REQUEST_TIMEOUT)
        try:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    reply = await conn.send(raw)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    outcome.fail(repr(exc))
                    continue
                if reply.status != 200 or expect not in reply.body:
                    outcome.fail(f"{reply.status} {reply.body[:120]!r}")
                    continue
                outcome.latencies_ms.append((time.perf_counter() - start) * 1000)
        finally:
            await conn.close()

    begin = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(connections)))
    outcome.seconds = time.perf_counter() - begin
    return outcome


async def password_grants(
    url: str, emails: Sequence[str], password: str, seconds: float
) -> Outcome:
    """One connection per e-mail address, each signing in with the password grant
    back to back for ``seconds``."""
    target = Target.parse(url)
    outcome = Outcome()
    deadline = time.perf_counter() + seconds

    async def loop(email: str) -> None:
        conn = Connection(target, timeout=REQUEST_TIMEOUT)
        body = form(grant_type="password", username=email, password=password)
        try:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    status, answer = await _post(conn, TOKEN_PATH, body, {})
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    outcome.fail(repr(exc))
                    continue
                if status != 200:
                    outcome.fail(f"{status} {answer[:120]!r}")
                    continue
                outcome.latencies_ms.append((time.perf_counter() - start) * 1000)
        finally:
            await conn.close()

    begin = time.perf_counter()
    await asyncio.gather(*(loop(email) for email in emails))
    outcome.seconds = time.perf_counter() - begin
    return outcome


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` (every thread) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14, 15)


@dataclass
class Figure:
    """One measured load: its outcome and the server's CPU use meanwhile."""

    outcome: Outcome
    server_cpu: float  # fraction of one CPU

    @property
    def cpu_ms(self) -> float:
        """The server's CPU milliseconds per request: less sensitive to a busy
        machine than requests per second (0 without requests)."""
        per_s = self.outcome.per_s
        return self.server_cpu / per_s * 1000 if per_s else 0.0

    def text(self, unit: str = "/s") -> str:
        o = self.outcome
        errors = f", {o.errors} errors" if o.errors else ""
        return (
            f"{o.per_s:,.0f}{unit} (p50 {o.percentile(50):.1f} ms, p99 {o.percentile(99):.1f} ms,"
            f" server CPU {self.server_cpu:.0%} = {self.cpu_ms:.2f} ms each{errors})"
        )


def password_grant(client: httpx.Client, email: str) -> dict[str, Any]:
    """Access and refresh token of a password grant.

    Raises:
        BenchError: the grant failed.
    """
    body = {"grant_type": "password", "username": email, "password": PASSWORD}
    response = client.post(TOKEN_PATH, data=body)
    if response.status_code != 200:
        raise BenchError(f"password grant: {response.status_code} {response.text[:200]}")
    return dict(response.json())


def measured(server: KeyturnServer, work: Callable[[], Coroutine[Any, Any, Outcome]]) -> Figure:
    """Run ``work`` on the load generator's CPU, with the server's CPU use meanwhile."""
    with pinned(CLIENT_CPU):
        before, start = cpu_seconds(server.pid), time.perf_counter()
        outcome = asyncio.run(work())
        used, wall = cpu_seconds(server.pid) - before, time.perf_counter() - start
    return Figure(outcome, used / wall if wall else 0.0)


def fresh_families(server: KeyturnServer, emails: list[str]) -> list[str]:
    """One new refresh family per user: the refresh tokens to start chains from."""
    with server.client() as client:
        return [str(password_grant(client, email)["refresh_token"]) for email in emails]
