"""The mixed workload of ``benchmarks/soak.py``: what one simulated client does.

Every operation is a real HTTP exchange with a live ``keyturn serve``, checked
the way a client relies on it; anything else is an error:

==================  =============================================================
``register``        ``POST /auth/register`` of a new address: 201
``sign_in``         ``POST /auth/login``: 200, a session cookie and a CSRF token
``whoami_cookie``   ``GET /auth/whoami`` with a session cookie: 200, via session
``sign_out``        ``POST /auth/logout`` (cookie + CSRF): 204, and the cookie is
                    refused afterwards (401)
``token``           the password grant of ``POST /oauth/token``: 200, two tokens
``whoami_bearer``   ``GET /auth/whoami`` with a bearer token: 200, via token
``refresh``         the refresh grant: 200, both tokens rotated
``revoke``          ``POST /oauth/revoke`` of a refresh token: 200, and the token
                    no longer refreshes (400 ``invalid_grant``)
==================  =============================================================

Sessions and token families live in bounded pools (so the server's state stays
bounded and RSS measures leaks, not growth by design); each credential is
checked out by one operation at a time, as one client would hold it. An
operation whose pool is empty (or full) does its counterpart instead: a whoami
with no session signs in, a sign-in with a full pool signs out.

Requests name their client address in ``X-Forwarded-For`` (the soak server
trusts 127.0.0.1 as a proxy), spread over the documentation ranges RFC 5737
reserves, so the per-address throttles of a real deployment apply to many
clients, not to one.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from keyturn.bench.wire import Connection, Reply, Target

SESSION_COOKIE = "__Host-keyturn_session"
OPERATIONS = (
    "register",
    "sign_in",
    "whoami_cookie",
    "sign_out",
    "token",
    "whoami_bearer",
    "refresh",
    "revoke",
)
#: Relative frequency of each operation (per 100): whoami dominates, as in real
#: traffic; the argon2-bound ones (register, sign_in, token) are 11 %.
MIX = {
    "register": 4,
    "sign_in": 4,
    "whoami_cookie": 34,
    "sign_out": 4,
    "token": 3,
    "whoami_bearer": 34,
    "refresh": 14,
    "revoke": 3,
}
#: The operations that hash a password (argon2id): seconds each under load.
HASHING = frozenset({"register", "sign_in", "token"})
#: Most live sessions and token families the workload keeps.
POOL_LIMIT = 200
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
#: Seconds after which an idle keep-alive connection is reopened before use:
#: below uvicorn's ``timeout_keep_alive`` (5 s), after which the server closes it.
IDLE_REOPEN = 3.0
#: RFC 5737 documentation addresses: header values only, never contacted.
ADDRESSES = [f"{net}.{host}" for net in ("198.51.100", "203.0.113") for host in range(1, 255)]


class CheckFailed(Exception):
    """An answer a client could not rely on."""


@dataclass
class Session:
    email: str
    cookie: str
    csrf: str


@dataclass
class Family:
    email: str
    access: str
    refresh: str


@dataclass
class State:
    """Accounts and the pools of live credentials."""

    password: str
    prefix: str
    accounts: list[str] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    families: list[Family] = field(default_factory=list)
    live_sessions: int = 0
    live_families: int = 0
    registered: int = 0

    def new_email(self) -> str:
        self.registered += 1
        return f"{self.prefix}-{self.registered}@soak.example"


def _expect(reply: Reply, status: int, what: str) -> None:
    if reply.status != status:
        raise CheckFailed(f"{what}: {reply.status} (expected {status}) {reply.body[:160]!r}")


def _session_cookie(reply: Reply) -> str | None:
    for name, value in reply.headers:
        if name == "set-cookie" and value.startswith(SESSION_COOKIE + "="):
            return value.split(";", 1)[0]
    return None


class Workload:
    """The operations, over a pool of keep-alive connections to one server."""

    def __init__(self, url: str, state: State, connections: int, timeout: float) -> None:
        self.target = Target.parse(url)
        self.state = state
        self.timeout = timeout
        # Most recently used first, with the time it was last used: a connection
        # idle longer than the server keeps it open is reopened, not reused (a
        # real client does the same, or retries).
        self.pool: asyncio.LifoQueue[tuple[Connection, float]] = asyncio.LifoQueue()
        for _ in range(connections):
            self.pool.put_nowait((Connection(self.target, timeout=timeout), 0.0))
        self.rng = random.Random(1)
        self.ops: dict[str, Callable[[Connection], Awaitable[str]]] = {
            name: getattr(self, name) for name in OPERATIONS
        }
        self.names = list(MIX)
        self.weights = [MIX[name] for name in self.names]

    async def close(self) -> None:
        while not self.pool.empty():
            await self.pool.get_nowait()[0].close()

    def pick(self) -> str:
        return self.rng.choices(self.names, self.weights)[0]

    async def run(self, name: str) -> tuple[str, float]:
        """Run operation ``name`` (or its stand-in); (what ran, seconds).

        Raises:
            CheckFailed, OSError, asyncio.IncompleteReadError: the operation failed.
        """
        conn, last_used = await self.pool.get()
        try:
            if time.monotonic() - last_used > IDLE_REOPEN:
                await conn.close()  # the next request opens a fresh connection
            start = time.perf_counter()
            done = await self.ops[name](conn)
            return done, time.perf_counter() - start
        finally:
            self.pool.put_nowait((conn, time.monotonic()))

    async def _send(
        self, conn: Connection, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> Reply:
        headers = {**headers, "X-Forwarded-For": self.rng.choice(ADDRESSES)}
        return await conn.request(method, path, headers=headers, body=body)

    def _take(self, pool: list[Session] | list[Family]) -> Session | Family | None:
        return pool.pop(self.rng.randrange(len(pool))) if pool else None

    # --- the operations -----------------------------------------------------------

    async def register(self, conn: Connection) -> str:
        email = self.state.new_email()
        body = json.dumps({"email": email, "password": self.state.password}).encode()
        _expect(await self._send(conn, "POST", "/auth/register", JSON, body), 201, "register")
        self.state.accounts.append(email)
        return "register"

    async def sign_in(self, conn: Connection) -> str:
        if self.state.live_sessions >= POOL_LIMIT:
            return await self.sign_out(conn)
        email = self.rng.choice(self.state.accounts)
        body = json.dumps({"email": email, "password": self.state.password}).encode()
        reply = await self._send(conn, "POST", "/auth/login", JSON, body)
        _expect(reply, 200, "sign-in")
        cookie = _session_cookie(reply)
        if cookie is None:
            raise CheckFailed("sign-in set no session cookie")
        self.state.sessions.append(Session(email, cookie, json.loads(reply.body)["csrf_token"]))
        self.state.live_sessions += 1
        return "sign_in"

    async def whoami_cookie(self, conn: Connection) -> str:
        session = self._take(self.state.sessions)
        if not isinstance(session, Session):
            return await self.sign_in(conn)
        try:
            reply = await self._send(conn, "GET", "/auth/whoami", {"Cookie": session.cookie})
            _expect(reply, 200, "whoami with a session")
            if json.loads(reply.body).get("via") != "session":
                raise CheckFailed(f"whoami with a session: {reply.body[:160]!r}")
        finally:
            self.state.sessions.append(session)
        return "whoami_cookie"

    async def sign_out(self, conn: Connection) -> str:
        session = self._take(self.state.sessions)
        if not isinstance(session, Session):
            return await self.sign_in(conn)
        self.state.live_sessions -= 1
        headers = {"Cookie": session.cookie, "X-CSRF-Token": session.csrf}
        _expect(await self._send(conn, "POST", "/auth/logout", headers), 204, "sign-out")
        after = await self._send(conn, "GET", "/auth/whoami", {"Cookie": session.cookie})
        if after.status != 401:  # how long the signed-out cookie stays accepted, for the report
            waited = await self._accepted_for(conn, {"Cookie": session.cookie})
            raise CheckFailed(
                f"whoami after sign-out: {after.status} (expected 401), {waited}; "
                f"{after.body[:100]!r}"
            )
        return "sign_out"

    async def _accepted_for(self, conn: Connection, headers: dict[str, str]) -> str:
        """Poll whoami until it refuses: how long a credential outlived its end."""
        start = time.perf_counter()
        while (waited := time.perf_counter() - start) < 10.0:
            await asyncio.sleep(0.25)
            if (await self._send(conn, "GET", "/auth/whoami", headers)).status == 401:
                return f"refused {waited + 0.25:.2f} s later"
        return "still accepted 10 s later"

    async def token(self, conn: Connection) -> str:
        if self.state.live_families >= POOL_LIMIT:
            return await self.revoke(conn)
        email = self.rng.choice(self.state.accounts)
        body = urlencode(
            {"grant_type": "password", "username": email, "password": self.state.password}
        ).encode()
        reply = await self._send(conn, "POST", "/oauth/token", FORM, body)
        _expect(reply, 200, "password grant")
        answer = json.loads(reply.body)
        self.state.families.append(Family(email, answer["access_token"], answer["refresh_token"]))
        self.state.live_families += 1
        return "token"

    async def whoami_bearer(self, conn: Connection) -> str:
        family = self._take(self.state.families)
        if not isinstance(family, Family):
            return await self.token(conn)
        try:
            headers = {"Authorization": f"Bearer {family.access}"}
            reply = await self._send(conn, "GET", "/auth/whoami", headers)
            _expect(reply, 200, "whoami with a bearer token")
            if json.loads(reply.body).get("via") != "token":
                raise CheckFailed(f"whoami with a bearer token: {reply.body[:160]!r}")
        finally:
            self.state.families.append(family)
        return "whoami_bearer"

    async def refresh(self, conn: Connection) -> str:
        family = self._take(self.state.families)
        if not isinstance(family, Family):
            return await self.token(conn)
        try:
            body = urlencode({"grant_type": "refresh_token", "refresh_token": family.refresh})
            reply = await self._send(conn, "POST", "/oauth/token", FORM, body.encode())
            _expect(reply, 200, "refresh grant")
            answer = json.loads(reply.body)
            family.access, family.refresh = answer["access_token"], answer["refresh_token"]
        except BaseException:
            self.state.live_families -= 1  # a family in doubt is dropped, not reused
            raise
        self.state.families.append(family)
        return "refresh"

    async def revoke(self, conn: Connection) -> str:
        family = self._take(self.state.families)
        if not isinstance(family, Family):
            return await self.token(conn)
        self.state.live_families -= 1
        body = urlencode({"token": family.refresh, "token_type_hint": "refresh_token"})
        _expect(await self._send(conn, "POST", "/oauth/revoke", FORM, body.encode()), 200, "revoke")
        again = urlencode({"grant_type": "refresh_token", "refresh_token": family.refresh})
        after = await self._send(conn, "POST", "/oauth/token", FORM, again.encode())
        _expect(after, 400, "refresh after revocation")
        return "revoke"
