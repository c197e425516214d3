"""Revocation lag across two instances on one store.

Each sample signs a user in on instance A, makes instance B accept the new
credential (so B holds it in its caches, as a busy instance would), waits a
random 0-100 ms (so samples do not phase-lock with any periodic sync), signs out
on A (``POST /auth/logout``: deletes the session, or revokes the access token and
its refresh family), and from the moment A has answered polls ``GET
/auth/whoami`` on B every couple of milliseconds until B answers 401. The lag is
the time until that 401 arrived (an upper bound by one round trip).

How B learns about the revocation is up to the deployment: a fan-out bus when
there is one, otherwise B's cache entries and revocation replica expiring after
the staleness bound. The benchmark measures whichever is in place. In the
stateless token mode access tokens are never checked for revocation, so there is
no lag to measure: the token stays valid until it expires, by design.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Callable
from urllib.parse import urlencode

from keyturn.bench.accounts import PASSWORD, SESSION_COOKIE, Credential, register
from keyturn.bench.errors import BenchError
from keyturn.bench.loadgen import run_async
from keyturn.bench.modes import Mode
from keyturn.bench.results import LagResult
from keyturn.bench.servers import ServerProcess
from keyturn.bench.stats import percentile
from keyturn.bench.wire import Connection, Reply, Target

__all__ = ["LAG_USER", "POLL_INTERVAL", "SAMPLE_TIMEOUT", "measure_lag", "stateless_lag"]

LAG_USER = "lag@bench.example"

#: Seconds between two polls of instance B.
POLL_INTERVAL = 0.002

#: Seconds a sample waits for B to refuse before it counts as not refused
#: (above the largest staleness bound keyturn allows, 5 s).
SAMPLE_TIMEOUT = 6.0

#: Seconds any single request of a sample may take.
REQUEST_TIMEOUT = 10.0

_WHOAMI = "/auth/whoami"


def _check(reply: Reply, expected: int, what: str) -> Reply:
    if reply.status != expected:
        raise BenchError(f"{what}: {reply.status} {reply.body[:200]!r}")
    return reply


async def _sign_in(a: Connection, mode: Mode, email: str) -> Credential:
    if mode.credential == "session":
        body = json.dumps({"email": email, "password": PASSWORD}).encode()
        reply = _check(
            await a.request(
                "POST", "/auth/login", headers={"Content-Type": "application/json"}, body=body
            ),
            200,
            "POST /auth/login on A",
        )
        for name, value in reply.headers:
            if name == "set-cookie" and value.startswith(SESSION_COOKIE + "="):
                cookie = value.split(";", 1)[0]
                csrf = str(json.loads(reply.body)["csrf_token"])
                return Credential(email, "session", {"Cookie": cookie}, csrf)
        raise BenchError("POST /auth/login on A set no session cookie")
    form = urlencode({"grant_type": "password", "username": email, "password": PASSWORD})
    reply = _check(
        await a.request(
            "POST",
            "/oauth/token",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            body=form.encode(),
        ),
        200,
        "POST /oauth/token on A",
    )
    token = str(json.loads(reply.body)["access_token"])
    return Credential(email, "token", {"Authorization": f"Bearer {token}"})


async def _sample(a_url: str, b_url: str, mode: Mode, give_up_after: float) -> float | None:
    a = Connection(Target.parse(a_url), timeout=REQUEST_TIMEOUT)
    b = Connection(Target.parse(b_url), timeout=REQUEST_TIMEOUT)
    try:
        credential = await _sign_in(a, mode, LAG_USER)
        for _ in range(3):
            _check(
                await b.request("GET", _WHOAMI, headers=credential.headers),
                200,
                "GET /auth/whoami on B with a fresh credential",
            )
        await asyncio.sleep(random.uniform(0.0, 0.1))  # noqa: S311 - jitter, not a secret
        _check(
            await a.request("POST", "/auth/logout", headers=credential.unsafe_headers),
            204,
            "POST /auth/logout on A",
        )
        revoked_at = time.perf_counter()
        while True:
            reply = await b.request("GET", _WHOAMI, headers=credential.headers)
            elapsed = time.perf_counter() - revoked_at
            if reply.status == 401:
                return elapsed * 1000
            if reply.status != 200:
                raise BenchError(f"B answered {reply.status} while it was polled")
            if elapsed > give_up_after:
                return None
            await asyncio.sleep(POLL_INTERVAL)
    finally:
        await a.close()
        await b.close()


def stateless_lag() -> LagResult:
    """The lag of the stateless token mode: none to measure, by design."""
    return LagResult(
        samples_ms=[],
        not_refused=0,
        timeout_s=0.0,
        p50_ms=None,
        p99_ms=None,
        max_ms=None,
        note="stateless mode does not check access tokens for revocation: "
        "a revoked token stays valid until it expires (--access-token-ttl)",
    )


def measure_lag(
    a: ServerProcess,
    b: ServerProcess,
    mode: Mode,
    *,
    samples: int,
    timeout: float = SAMPLE_TIMEOUT,
    progress: Callable[[int], None] | None = None,
) -> LagResult:
    """``samples`` revocations on A, each timed until B refuses the credential.

    Raises:
        BenchError: a step that must succeed did not (sign-in, B accepting a
            fresh credential, the sign-out on A), or B answered neither 200 nor 401.
    """
    if mode.revocation_mode == "stateless" and mode.credential == "token":
        return stateless_lag()
    register(a, LAG_USER)
    lags: list[float] = []
    not_refused = 0
    for number in range(samples):
        lag = run_async(lambda: _sample(a.url, b.url, mode, timeout))
        if lag is None:
            not_refused += 1
        else:
            lags.append(lag)
        if progress is not None:
            progress(number + 1)
    note = None
    if not_refused:
        note = (
            f"{not_refused} of {samples} revocations were still accepted by B after {timeout:g} s"
        )
    # A revocation B never refused counts as an infinite lag (JSON: null).
    every = lags + [math.inf] * not_refused
    return LagResult(
        samples_ms=lags,
        not_refused=not_refused,
        timeout_s=timeout,
        p50_ms=percentile(every, 50) if every else None,
        p99_ms=percentile(every, 99) if every else None,
        max_ms=max(every) if every else None,
        note=note,
    )
