"""Memory an instance spends per credential it has validated.

Method: the **resident set size of instance B** (from ``/proc``) before and after
it answered ``GET /auth/whoami`` once for each of N distinct credentials it had
never seen, scaled to 100,000. That growth is what B keeps per credential: for
sessions its cache entry (session, user, bookkeeping; the cache holds up to
100,000 by default), for access tokens the verified-token cache entry. The
credentials live in the stores, not in B, before the measurement starts:

* sessions are created directly in the shared store by this process, through
  keyturn's own :class:`~keyturn.sessions.manager.SessionManager` (N sign-ins over HTTP
  would cost N argon2 verifications, minutes of CPU);
* access tokens are minted on instance A with ``POST /auth/token`` from one
  browser session (no password hashing), so B has never seen them.

RSS includes allocator slack, so small N read noisy; the figure says which N.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from keyturn.bench.accounts import SESSION_COOKIE, Credential, login
from keyturn.bench.deployment import BENCH_USER, Deployment
from keyturn.bench.errors import BenchError
from keyturn.bench.loadgen import run_async
from keyturn.bench.results import MemoryResult
from keyturn.bench.wire import Connection, Target, build_request

__all__ = ["create_sessions", "measure_memory", "mint_tokens"]

#: Connections used to fill and to read the caches.
CONCURRENCY = 16

#: Credentials validated before the first RSS reading (not counted).
WARM_UP = 100

#: Sessions per user when they are created in the store.
SESSIONS_PER_USER = 10


@contextlib.contextmanager
def _without_keyturn_environment() -> Iterator[None]:
    """Settings built inside see none of the caller's ``KEYTURN_*`` variables."""
    saved = {name: value for name, value in os.environ.items() if name.startswith("KEYTURN_")}
    for name in saved:
        del os.environ[name]
    try:
        yield
    finally:
        os.environ.update(saved)


async def create_sessions(database_url: str, redis_url: str | None, count: int) -> list[str]:
    """``count`` sessions over ``count / 10`` new users, written to the store the
    servers use; the secrets (cookie values)."""
    from keyturn.clock import SystemClock
    from keyturn.sessions.manager import SessionManager
    from keyturn.settings import Settings
    from keyturn.stores.factory import open_storage
    from keyturn.stores.records import User

    with _without_keyturn_environment():
        settings = Settings(database_url=database_url, redis_url=redis_url)
    storage = await open_storage(settings)
    manager = SessionManager(storage.sessions, storage.users, settings, SystemClock())
    run = uuid.uuid4().hex[:8]
    # Redis round trips overlap; SQLite takes one writer at a time (a concurrent
    # read-then-write transaction would fail with "database is locked").
    limit = asyncio.Semaphore(CONCURRENCY if redis_url else 1)

    async def user_sessions(number: int) -> list[str]:
        async with limit:
            user = User(
                id=str(uuid.uuid4()),
                email=f"memory-{run}-{number}@bench.example",
                password_hash="$argon2id$never-signs-in",  # noqa: S106 - matches no password
                created_at=time.time(),
            )
            await storage.users.add(user)
            return [
                (await manager.create(user, ip="127.0.0.1", user_agent="keyturn-bench")).secret
                for _ in range(min(SESSIONS_PER_USER, count - number))
            ]

    try:
        batches = await asyncio.gather(
            *(user_sessions(number) for number in range(0, count, SESSIONS_PER_USER))
        )
    finally:
        await storage.close()
    return [secret for batch in batches for secret in batch]


async def _fan_out(url: str, requests: Sequence[bytes], expected: int) -> list[bytes]:
    """Send every request over ``CONCURRENCY`` connections; the bodies of the
    replies, in order.

    Raises:
        BenchError: a reply did not have status ``expected``.
    """
    target = Target.parse(url)
    bodies: list[bytes] = [b""] * len(requests)
    queue = iter(range(len(requests)))

    async def worker() -> None:
        connection = Connection(target, timeout=30.0)
        try:
            for index in queue:
                reply = await connection.send(requests[index])
                if reply.status != expected:
                    raise BenchError(f"{url}: {reply.status} {reply.body[:200]!r}")
                bodies[index] = reply.body
        finally:
            await connection.close()

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return bodies


async def mint_tokens(url: str, session: Credential, count: int) -> list[str]:
    """``count`` access tokens from ``POST /auth/token`` with one session."""
    target = Target.parse(url)
    request = build_request(target, "POST", "/auth/token", session.unsafe_headers)
    bodies = await _fan_out(url, [request] * count, 200)
    return [str(json.loads(body)["access_token"]) for body in bodies]


def _whoami_requests(url: str, headers: Sequence[dict[str, str]]) -> list[bytes]:
    target = Target.parse(url + "/auth/whoami")
    return [build_request(target, "GET", headers=item) for item in headers]


def _rss(deployment: Deployment) -> int:
    rss = deployment.secondary.rss_bytes()
    if rss is None:
        raise BenchError("cannot read the server's memory (needs Linux /proc or psutil)")
    return rss


def measure_memory(deployment: Deployment, *, items: int) -> MemoryResult:
    """RSS growth of instance B after validating ``items`` new credentials.

    Raises:
        BenchError: the credentials could not be made or were not accepted, or
            the RSS cannot be read on this platform.
    """
    b = deployment.start_secondary()
    headers: list[dict[str, Any]]
    total = items + WARM_UP
    if deployment.mode.credential == "session":
        secrets = asyncio.run(create_sessions(deployment.database_url, deployment.redis_url, total))
        headers = [{"Cookie": f"{SESSION_COOKIE}={secret}"} for secret in secrets]
        item = "session"
    else:
        session = login(deployment.primary, BENCH_USER)
        tokens = run_async(lambda: mint_tokens(deployment.primary.url, session, total))
        headers = [{"Authorization": f"Bearer {token}"} for token in tokens]
        item = "access token"
    requests = _whoami_requests(b.url, headers)
    # The first credentials B sees pay one-time costs (code paths, caches being
    # created); they are validated before the first reading and not counted.
    warm, requests = requests[:WARM_UP], requests[WARM_UP:]
    run_async(lambda: _fan_out(b.url + "/auth/whoami", warm, 200))
    time.sleep(0.2)
    before = _rss(deployment)
    run_async(lambda: _fan_out(b.url + "/auth/whoami", requests, 200))
    time.sleep(0.2)
    after = _rss(deployment)
    return MemoryResult(
        item=item, items=len(requests), rss_before_bytes=before, rss_after_bytes=after
    )
