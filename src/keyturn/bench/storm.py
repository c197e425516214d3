"""Authenticated requests during a sign-in storm.

Sixteen users sign in back to back, concurrently (``POST /auth/login`` for the
session modes, the password grant of ``POST /oauth/token`` for the token modes:
a real argon2id verify each time, distinct users so throttling never kicks in),
while a light open-loop probe sends ``GET /auth/whoami`` with the measured
credential at a fixed rate. Each round has an idle phase (probe alone) and a
storm phase (probe during the sign-ins); the figure is the median of the
per-round ratios of the probe's p99, storm over idle.

The server is **not pinned** here: the question is how it shares the machine's
CPUs between its argon2 threads and its event loop, as it would in production.
The sign-in clients and the probe run in this process, on the same CPUs.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from keyturn.bench.accounts import PASSWORD, Credential, register
from keyturn.bench.loadgen import probe, run_async
from keyturn.bench.modes import Mode
from keyturn.bench.results import StormResult
from keyturn.bench.servers import ServerProcess
from keyturn.bench.stats import latency_percentiles, median
from keyturn.bench.wire import Connection, Target, build_request

__all__ = ["STORM_LOGINS", "measure_storm", "storm_users"]

#: Concurrent sign-ins in the storm (issue #2: "16 concurrent logins").
STORM_LOGINS = 16

#: Seconds one sign-in may take before it counts as failed.
LOGIN_TIMEOUT = 30.0


@dataclass(frozen=True)
class _Round:
    idle_ms: dict[int, float]
    storm_ms: dict[int, float]
    logins_per_s: float
    failures: int


def storm_users(server: ServerProcess, count: int = STORM_LOGINS) -> list[str]:
    """Register ``count`` users for the storm; their e-mail addresses."""
    emails = [f"storm{n}@bench.example" for n in range(count)]
    for email in emails:
        register(server, email)
    return emails


def _login_request(target: Target, mode: Mode, email: str) -> bytes:
    if mode.credential == "session":
        body = json.dumps({"email": email, "password": PASSWORD}).encode()
        return build_request(
            target, "POST", "/auth/login", {"Content-Type": "application/json"}, body
        )
    form = urlencode({"grant_type": "password", "username": email, "password": PASSWORD})
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return build_request(target, "POST", "/oauth/token", headers, form.encode())


async def _storm(target: Target, requests: list[bytes], seconds: float) -> tuple[int, int, float]:
    """One closed loop per user for ``seconds``: sign-ins, failures, elapsed."""
    done = failures = 0
    deadline = time.perf_counter() + seconds

    async def user_loop(request: bytes) -> None:
        nonlocal done, failures
        connection = Connection(target, timeout=LOGIN_TIMEOUT)
        try:
            while time.perf_counter() < deadline:
                try:
                    reply = await connection.send(request)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    failures += 1
                    await asyncio.sleep(0.05)
                    continue
                if reply.status == 200:
                    done += 1
                else:
                    failures += 1
        finally:
            await connection.close()

    began = time.perf_counter()
    await asyncio.gather(*(user_loop(request) for request in requests))
    return done, failures, time.perf_counter() - began


async def _round(
    url: str, credential: Credential, requests: list[bytes], rate: float, seconds: float
) -> _Round:
    target = Target.parse(url)
    idle, idle_failures = await probe(url, credential.headers, rate, seconds)
    storm = asyncio.create_task(_storm(target, requests, seconds + 1.0))
    await asyncio.sleep(0.5)  # let the storm build up before probing
    during, storm_failures = await probe(url, credential.headers, rate, seconds)
    logins, login_failures, elapsed = await storm
    return _Round(
        idle_ms=latency_percentiles(idle),
        storm_ms=latency_percentiles(during),
        logins_per_s=logins / elapsed if elapsed else 0.0,
        failures=idle_failures + storm_failures + login_failures,
    )


def measure_storm(
    server: ServerProcess,
    mode: Mode,
    credential: Credential,
    emails: list[str],
    *,
    rounds: int,
    seconds: float,
    rate: float = 100.0,
    progress: Callable[[int], None] | None = None,
) -> StormResult:
    """Idle against storm p99 of ``GET /auth/whoami`` on ``server``. Every thread
    of the server is unpinned first (see the module docstring) and stays so."""
    server.pin(None)
    url = server.url + "/auth/whoami"
    target = Target.parse(url)
    requests = [_login_request(target, mode, email) for email in emails]
    run_async(lambda: probe(url, credential.headers, rate, min(1.0, seconds)))  # warm-up
    results: list[_Round] = []
    for number in range(rounds):
        results.append(run_async(lambda: _round(url, credential, requests, rate, seconds)))
        if progress is not None:
            progress(number + 1)

    def pick(select: Callable[[_Round], float]) -> float:
        return median(select(result) for result in results)

    return StormResult(
        logins=len(emails),
        probe_rate=rate,
        idle_p50_ms=pick(lambda r: r.idle_ms[50]),
        idle_p99_ms=pick(lambda r: r.idle_ms[99]),
        storm_p50_ms=pick(lambda r: r.storm_ms[50]),
        storm_p99_ms=pick(lambda r: r.storm_ms[99]),
        p99_ratio=pick(lambda r: r.storm_ms[99] / r.idle_ms[99]),
        logins_per_s=pick(lambda r: r.logins_per_s),
        failures=sum(result.failures for result in results),
        rounds=len(results),
    )
