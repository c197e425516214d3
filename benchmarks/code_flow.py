"""The OAuth 2.1 authorization-code round trip on this machine (issue #12, "Done when").

Run ``python benchmarks/code_flow.py [--duration S] [--connections N] [--quick]``.

One ``keyturn serve`` (SQLite, one worker pinned to CPU 0), driven from CPU 1 over
HTTP with keep-alive connections (:class:`keyturn.bench.wire.Connection`), by a
signed-in browser session (its cookie) and a first-party public client
registered with ``keyturn client add --redirect-uri http://127.0.0.1/callback``:

* **round trip**, one connection, back to back: ``GET /oauth/authorize`` (the
  session cookie, a fresh PKCE pair) -> 303 with the code, then ``POST
  /oauth/token`` ``grant_type=authorization_code`` (public client, PKCE): p50 and
  p99 of each half and of the whole;
* **code grant**: codes issued ahead, then exchanged by ``--connections``
  connections at once: requests per second of ``/oauth/token`` on the code grant;
* **refresh grant**: as many refresh chains (families from those exchanges),
  refreshing back to back: requests per second beside it.

Prints one table (rich) on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from rich.console import Console
from rich.table import Table

from keyturn.bench.accounts import login, register
from keyturn.bench.errors import BenchError
from keyturn.bench.machine import SERVER_CPU, machine_caption
from keyturn.bench.servers import KeyturnServer, clean_environment, keyturn_command, sqlite_url
from keyturn.bench.stats import latency_percentiles
from keyturn.bench.wire import Connection, Target
from oauth_load import FORM, REQUEST_TIMEOUT, TOKEN_PATH, Figure, Outcome, form, measured
from oauth_load import refresh_chains as refresh_load

console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
REDIRECT = "http://127.0.0.1/callback"
APP_REDIRECT = "http://127.0.0.1:8765/callback"
EMAIL = "code-flow@bench.example"


@dataclass
class RoundTrips:
    """The sequential round trip: each half and the whole, in milliseconds."""

    authorize: list[float] = field(default_factory=list)
    token: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    seconds: float = 0.0


def pkce() -> tuple[str, str]:
    """A verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def add_client(server: KeyturnServer, root: Path) -> str:
    """A first-party public client with the loopback redirect URI.

    Raises:
        BenchError: ``keyturn migrate`` or ``keyturn client add`` failed.
    """
    url = server.database_url
    for args in (
        ["migrate", "--database-url", url],
        ["client", "add", "bench-spa", "--first-party", "--redirect-uri", REDIRECT, "--json"],
    ):
        done = subprocess.run(
            [*keyturn_command(), *args, *([] if args[0] == "migrate" else ["--database-url", url])],
            capture_output=True,
            text=True,
            env=clean_environment(),
            cwd=root,
            timeout=120,
        )
        if done.returncode != 0:
            raise BenchError(f"keyturn {args[0]}: {done.stderr.strip()[-300:]}")
    return str(json.loads(done.stdout)["client_id"])


async def _authorize(conn: Connection, cookie: str, client_id: str) -> tuple[str, str]:
    """One ``GET /oauth/authorize``: the code and its verifier."""
    verifier, challenge = pkce()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": APP_REDIRECT,
            "state": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    reply = await conn.request("GET", "/oauth/authorize?" + query, headers={"Cookie": cookie})
    location = reply.header("location") or ""
    if reply.status != 303 or "code=" not in location:
        raise BenchError(f"authorize: {reply.status} {location[:200]} {reply.body[:200]!r}")
    return parse_qs(urlsplit(location).query)["code"][0], verifier


def _exchange_body(client_id: str, code: str, verifier: str) -> bytes:
    return form(
        grant_type="authorization_code",
        code=code,
        redirect_uri=APP_REDIRECT,
        client_id=client_id,
        code_verifier=verifier,
    )


async def round_trips(url: str, cookie: str, client_id: str, seconds: float) -> RoundTrips:
    """Authorize then exchange, back to back on one connection, for ``seconds``."""
    conn = Connection(Target.parse(url), timeout=REQUEST_TIMEOUT)
    result = RoundTrips()
    begin = time.perf_counter()
    try:
        while time.perf_counter() - begin < seconds:
            start = time.perf_counter()
            code, verifier = await _authorize(conn, cookie, client_id)
            middle = time.perf_counter()
            body = _exchange_body(client_id, code, verifier)
            reply = await conn.request("POST", TOKEN_PATH, headers=FORM, body=body)
            if reply.status != 200:
                raise BenchError(f"code grant: {reply.status} {reply.body[:200]!r}")
            end = time.perf_counter()
            result.authorize.append((middle - start) * 1000)
            result.token.append((end - middle) * 1000)
            result.total.append((end - start) * 1000)
    finally:
        await conn.close()
    result.seconds = time.perf_counter() - begin
    return result


async def issue_codes(url: str, cookie: str, client_id: str, count: int) -> list[tuple[str, str]]:
    """``count`` codes, issued ahead over 4 connections (each lives 60 s)."""
    target = Target.parse(url)
    codes: list[tuple[str, str]] = []

    async def worker(share: int) -> None:
        conn = Connection(target, timeout=REQUEST_TIMEOUT)
        try:
            for _ in range(share):
                codes.append(await _authorize(conn, cookie, client_id))
        finally:
            await conn.close()

    await asyncio.gather(*(worker(count // 4) for _ in range(4)))
    return codes


async def code_grants(
    url: str, client_id: str, codes: list[tuple[str, str]], connections: int, kept: list[str]
) -> Outcome:
    """Exchange every code, ``connections`` at once: the code grant's throughput
    (the refresh tokens go to ``kept``, in the order the answers arrived)."""
    target = Target.parse(url)
    outcome = Outcome()
    pending = list(codes)

    async def worker() -> None:
        conn = Connection(target, timeout=REQUEST_TIMEOUT)
        try:
            while pending:
                code, verifier = pending.pop()
                start = time.perf_counter()
                body = _exchange_body(client_id, code, verifier)
                reply = await conn.request("POST", TOKEN_PATH, headers=FORM, body=body)
                if reply.status != 200:
                    outcome.fail(f"code grant: {reply.status} {reply.body[:120]!r}")
                    continue
                outcome.latencies_ms.append((time.perf_counter() - start) * 1000)
                kept.append(json.loads(reply.body)["refresh_token"])
        finally:
            await conn.close()

    begin = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    outcome.seconds = time.perf_counter() - begin
    return outcome


async def fresh_chains(url: str, cookie: str, client_id: str, count: int) -> list[str]:
    """``count`` refresh tokens of families opened one at a time, after the code
    grant load: the newest families of the user, so none is over the per-user cap.

    The tokens the code-grant load returned last are not that: a family's
    ``created_at`` is taken before its insert waits for SQLite's write lock, so
    under load one of the last answers can carry one of the oldest timestamps of
    the moment, and the ``max_refresh_families_per_user`` cap (50, oldest
    ``created_at`` first) then revokes it before its chain starts, an
    ``invalid_grant`` that is the benchmark's doing, not the server's.
    """
    codes = await issue_codes(url, cookie, client_id, 4 * max(1, -(-count // 4)))
    kept: list[str] = []
    await code_grants(url, client_id, codes[:count], 1, kept)
    if len(kept) != count:
        raise BenchError(f"opened {len(kept)} refresh families, not {count}")
    return kept


def code_grant_batches(
    server: KeyturnServer,
    url: str,
    cookie: str,
    client_id: str,
    connections: int,
    seconds: float,
    kept: list[str],
) -> Figure:
    """Issue a batch of codes (not timed), exchange it (timed), until the exchanges
    add up to ``seconds``: a code lives 60 s, so a batch is small enough to be
    exchanged well within that."""
    total = Outcome()
    cpu = 0.0
    while total.seconds < seconds:
        codes = asyncio.run(issue_codes(url, cookie, client_id, 16 * connections))
        figure = measured(server, lambda c=codes: code_grants(url, client_id, c, connections, kept))  # type: ignore[misc]
        done = figure.outcome
        cpu += figure.server_cpu * done.seconds
        total.seconds += done.seconds
        total.latencies_ms += done.latencies_ms
        total.errors += done.errors
        total.first_error = total.first_error or done.first_error
    return Figure(total, cpu / total.seconds if total.seconds else 0.0)


def _row(table: Table, name: str, samples: list[float], rate: str) -> None:
    pct = latency_percentiles(samples)
    table.add_row(
        name, f"{pct.get(50, float('nan')):.2f}", f"{pct.get(99, float('nan')):.2f}", rate
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/code_flow.py", description=__doc__)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per load (8)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument("--quick", action="store_true", help="2 s loads, for a smoke run")
    args = parser.parse_args(argv)
    duration = 2.0 if args.quick else args.duration
    with tempfile.TemporaryDirectory(prefix="keyturn-code-flow-") as tmp:
        root = Path(tmp)
        server = KeyturnServer(workdir=root / "server", database_url=sqlite_url(root / "k.db"))
        client_id = add_client(server, root)
        server.start(cpu=SERVER_CPU)
        try:
            register(server, EMAIL)
            cookie = login(server, EMAIL).cookie
            url = server.url
            console.log("round trip: authorize then exchange, one connection")
            trips: RoundTrips | None = None

            async def run_trips() -> Outcome:
                nonlocal trips
                trips = await round_trips(url, cookie, client_id, duration)
                return Outcome(trips.seconds, trips.total)

            trip_figure = measured(server, run_trips)
            assert trips is not None
            console.log(
                f"code grant: batches of codes issued ahead, {args.connections} connections"
            )
            kept: list[str] = []
            code_figure = code_grant_batches(
                server, url, cookie, client_id, args.connections, duration, kept
            )
            console.log(f"refresh grant: {args.connections} chains")
            chains = asyncio.run(fresh_chains(url, cookie, client_id, args.connections))
            refresh_figure: Figure = measured(server, lambda: refresh_load(url, chains, duration))
        finally:
            server.stop()
    table = Table(title="OAuth 2.1 authorization code flow", caption=machine_caption())
    for column in ("measure", "p50 ms", "p99 ms", "rate"):
        table.add_column(column)
    per_s = len(trips.total) / trips.seconds if trips.seconds else 0.0
    _row(table, "GET /oauth/authorize (-> 303 with code)", trips.authorize, "")
    _row(table, "POST /oauth/token (code grant, PKCE)", trips.token, "")
    _row(
        table,
        "round trip, 1 connection",
        trips.total,
        f"{per_s:,.0f}/s (server CPU {trip_figure.server_cpu:.0%})",
    )
    for name, figure in (
        (f"code grant, {args.connections} connections", code_figure),
        (f"refresh grant, {args.connections} chains", refresh_figure),
    ):
        outcome = figure.outcome
        errors = f", {outcome.errors} errors: {outcome.first_error}" if outcome.errors else ""
        rate = f"{outcome.per_s:,.0f} req/s (server CPU {figure.server_cpu:.0%}{errors})"
        _row(table, name, outcome.latencies_ms, rate)
    console.print(table)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        console.print(f"[red]code_flow: {exc}[/red]")
        sys.exit(1)
