"""Several ``keyturn serve`` processes on one PostgreSQL and one Redis (issue #6).

:class:`Cluster` creates a fresh database on a PostgreSQL server, runs
``keyturn migrate`` once, and starts its instances (three by default) at the
same time, as an orchestrator would, each on its own port with the same
``--database-url``, ``--redis-url``, ``--issuer`` and key-encryption key.

:class:`Api` speaks the JSON and OAuth endpoints of one instance the way a
non-browser client does: the session cookie travels in an explicit ``Cookie``
header (httpx keeps ``Secure`` cookies off plain-http requests, as it should).

:func:`measure_refusal` is the lag probe: it polls other instances with a
credential in tight loops while one instance revokes it, and returns, per probe,
the seconds from the revoking response until that probe answered 401.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.live import Completed, LiveServer, run_keyturn
from tests.services import PostgresServer, RedisServer
from tests.support import session_cookie

from keyturn.keys.encryption import generate_kek
from keyturn.settings import Settings

ISSUER = "http://keyturn-cluster.test"
PASSWORD = "correct horse battery staple"

#: ``--refresh-grace`` of every cluster: long enough for three parallel refreshes
#: on a loaded 2-core machine, short enough to wait out in a test.
REFRESH_GRACE = 2

#: keyturn's default staleness bound (seconds): what an operator runs with.
STALENESS_BOUND = float(Settings.model_fields["staleness_bound"].default)

#: A revocation must reach the other instances within this (seconds): five times
#: the 100 ms target, for loaded CI machines, yet well under what cache expiry
#: alone gives. Measured without fan-out, an instance polled without pause
#: refreshes its cache ahead after half the bound, so a refusal took 0.8-1.4 s
#: there: a quarter of the bound tells fan-out from expiry on every sample.
LAG_LIMIT = STALENESS_BOUND / 4

SESSION_COOKIE = "__Host-keyturn_session"


def unique_email(prefix: str = "u") -> str:
    """A fresh address, so tests sharing a cluster never meet."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


class Cluster:
    """``size`` ``keyturn serve`` processes sharing one database and one Redis.

    Instances are named ``a``, ``b``, ``c``... (:attr:`a` etc. are shortcuts);
    each is a :class:`~tests.live.LiveServer` with its own working directory.
    """

    def __init__(
        self,
        root: Path,
        postgres: PostgresServer,
        redis: RedisServer,
        *,
        size: int = 3,
        args: Sequence[str] = (),
    ) -> None:
        self.root = root
        self.postgres = postgres
        self.redis = redis
        self.database = f"kt_cluster_{uuid.uuid4().hex[:12]}"
        self.database_url = postgres.url(self.database)
        self.env = {
            "KEYTURN_KEY_ENCRYPTION_KEY": generate_kek(),
            "KEYTURN_REDIS_URL": redis.url,
            "KEYTURN_ISSUER": ISSUER,
            # Every test registers from 127.0.0.1, some on six threads at once.
            "KEYTURN_REGISTER_MAX_PER_CLIENT": "1000",
            "KEYTURN_REGISTER_MAX_GLOBAL": "100000",
            # grant_response() gets tokens from the password grant, off by default (#12).
            "KEYTURN_PASSWORD_GRANT": "true",
        }
        serve_args = [
            "--redis-url",
            redis.url,
            "--issuer",
            ISSUER,
            "--refresh-grace",
            str(REFRESH_GRACE),
            *args,
        ]
        self.instances = [
            LiveServer(
                serve_args,
                workdir=root / f"instance-{name}",
                database_url=self.database_url,
                env=self.env,
            )
            for name in "abcdefgh"[:size]
        ]
        self._created = False

    @property
    def a(self) -> LiveServer:
        return self.instances[0]

    @property
    def b(self) -> LiveServer:
        return self.instances[1]

    @property
    def c(self) -> LiveServer:
        return self.instances[2]

    def start(self) -> Cluster:
        """Create the database, ``keyturn migrate`` it once, start every instance at
        once and wait until each reports healthy stores."""
        self.postgres.sql(f'CREATE DATABASE "{self.database}"')
        self._created = True
        migrated = self.cli("migrate")
        assert migrated.returncode == 0, f"keyturn migrate failed:\n{migrated.stderr}"
        with ThreadPoolExecutor(len(self.instances)) as pool:
            for future in [pool.submit(instance.start) for instance in self.instances]:
                future.result()
        for instance in self.instances:
            wait_healthy(instance)
        return self

    def stop(self) -> None:
        """Stop every instance and drop the database."""
        for instance in self.instances:
            instance.stop()
        if self._created and self.postgres.data_dir.exists():
            with contextlib.suppress(Exception):
                self.postgres.sql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def cli(self, *args: str, stdin: str = "", timeout: float = 60.0) -> Completed:
        """``keyturn ARGS`` with this cluster's settings (database, Redis, KEK, issuer)."""
        return run_keyturn(
            *args,
            "--database-url",
            self.database_url,
            stdin=stdin,
            env=self.env,
            cwd=self.root,
            timeout=timeout,
        )

    def server_logs(self) -> str:
        """The stderr of every instance, for failure messages."""
        return "\n".join(
            f"--- instance {instance.workdir.name} stderr (tail) ---\n{instance.stderr[-3000:]}"
            for instance in self.instances
        )


#: ``make_cluster(size=3, *, private_postgres=False, args=())`` (tests/cluster/conftest.py).
MakeCluster = Callable[..., Cluster]


def wait_healthy(instance: LiveServer, timeout: float = 20.0) -> None:
    """Wait until ``GET /healthz`` answers 200 (database and Redis reachable)."""
    deadline = time.monotonic() + timeout
    last = ""
    with httpx.Client(base_url=instance.url, timeout=5.0) as client:
        while time.monotonic() < deadline:
            try:
                response = client.get("/healthz")
            except httpx.TransportError as exc:
                last = repr(exc)
            else:
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            time.sleep(0.1)
    raise AssertionError(
        f"{instance.url}/healthz not healthy within {timeout:g} s: {last}\n"
        f"{instance.stderr[-3000:]}"
    )


# --- credentials and the API of one instance ------------------------------------------


@dataclass(frozen=True)
class CookieSession:
    """A browser sign-in: the session cookie's value and its CSRF token."""

    secret: str
    csrf: str
    user_id: str

    def headers(self, *, unsafe: bool = False) -> dict[str, str]:
        headers = {"Cookie": f"{SESSION_COOKIE}={self.secret}"}
        if unsafe:
            headers["X-CSRF-Token"] = self.csrf
        return headers


@dataclass(frozen=True)
class Bearer:
    """An access token."""

    token: str

    def headers(self, *, unsafe: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


Credential = CookieSession | Bearer


@dataclass(frozen=True)
class TokenPair:
    """A token response: the access token and (for grants) the refresh token."""

    access_token: str
    refresh_token: str
    body: dict[str, Any] = field(repr=False)

    @property
    def bearer(self) -> Bearer:
        return Bearer(self.access_token)


class Api:
    """Calls to one instance over one keep-alive connection (one thread at a time)."""

    def __init__(self, instance: LiveServer, *, timeout: float = 15.0) -> None:
        self.instance = instance
        self.http = httpx.Client(base_url=instance.url, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fresh(self) -> httpx.Client:
        self.http.cookies.clear()  # credentials travel only as the test says
        return self.http

    # --- raw calls -------------------------------------------------------------------

    def register_response(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return self._fresh().post("/auth/register", json={"email": email, "password": password})

    def login_response(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return self._fresh().post("/auth/login", json={"email": email, "password": password})

    def grant_response(self, email: str, password: str = PASSWORD) -> httpx.Response:
        form = {"grant_type": "password", "username": email, "password": password}
        return self._fresh().post("/oauth/token", data=form)

    def refresh_response(self, refresh_token: str) -> httpx.Response:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._fresh().post("/oauth/token", data=form)

    def whoami(self, credential: Credential) -> httpx.Response:
        return self._fresh().get("/auth/whoami", headers=credential.headers())

    def revoke(self, token: str, hint: str | None = None) -> httpx.Response:
        form = {"token": token, **({"token_type_hint": hint} if hint else {})}
        return self._fresh().post("/oauth/revoke", data=form)

    def logout(self, credential: Credential) -> httpx.Response:
        return self._fresh().post("/auth/logout", headers=credential.headers(unsafe=True))

    def logout_all(self, credential: Credential) -> httpx.Response:
        return self._fresh().post("/auth/logout-all", headers=credential.headers(unsafe=True))

    # --- checked calls ---------------------------------------------------------------

    def register(self, email: str | None = None, password: str = PASSWORD) -> str:
        """Create an account; its e-mail address."""
        email = email or unique_email()
        response = self.register_response(email, password)
        assert response.status_code == 201, response.text
        return email

    def login(self, email: str, password: str = PASSWORD) -> CookieSession:
        """Sign in with the JSON API; the session cookie and CSRF token."""
        response = self.login_response(email, password)
        assert response.status_code == 200, response.text
        secret = session_cookie(response)
        body = response.json()
        return CookieSession(secret, body["csrf_token"], body["user"]["id"])

    def grant(self, email: str, password: str = PASSWORD) -> TokenPair:
        """The password grant; a new refresh family."""
        return token_pair(self.grant_response(email, password))

    def refresh(self, refresh_token: str) -> TokenPair:
        """The refresh grant; the rotated pair."""
        return token_pair(self.refresh_response(refresh_token))


def token_pair(response: httpx.Response) -> TokenPair:
    """The pair of a successful ``/oauth/token`` response."""
    assert response.status_code == 200, f"{response.status_code} {response.text}"
    body = response.json()
    return TokenPair(body["access_token"], body["refresh_token"], body)


def assert_store_unavailable(response: httpx.Response) -> None:
    """A 503 with the ``store_unavailable`` error code (JSON or OAuth body)."""
    assert response.status_code == 503, f"{response.status_code} {response.text}"
    assert response.json()["error"] == "store_unavailable", response.text


# --- the lag probe --------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """``GET /auth/whoami`` on one instance with one credential."""

    name: str
    instance: LiveServer
    credential: Credential


@dataclass
class _ProbeResult:
    refused_at: float | None = None
    failure: str | None = None
    requests: int = 0


#: Seconds between two polls of one probe.
POLL_INTERVAL = 0.002


def measure_refusal(
    probes: Sequence[Probe],
    revoke: Callable[[], object],
    *,
    timeout: float = 5.0,
) -> dict[str, float]:
    """Seconds from the end of ``revoke()`` until each probe is refused (401).

    Every probe first checks that its instance accepts the credential (200) and
    keeps polling, each in its own thread on its own connection, every
    :data:`POLL_INTERVAL`, while ``revoke()`` runs and after, until a 401. So each
    instance has the credential in its cache when the revocation happens, and a
    refusal can only come from fan-out or from the store. A refusal seen before
    ``revoke()`` returned counts as 0 (the fan-out beat the response); one seen
    before ``revoke()`` started, any status other than 200/401, or no refusal
    within ``timeout`` fails the test.
    """
    results = {probe.name: _ProbeResult() for probe in probes}
    ready = threading.Barrier(len(probes) + 1, timeout=30)
    times: dict[str, float] = {}
    stop = threading.Event()

    def poll(probe: Probe) -> None:
        result = results[probe.name]
        with Api(probe.instance, timeout=10.0) as api:
            try:
                for _ in range(2):
                    warm = api.whoami(probe.credential)
                    if warm.status_code != 200:
                        result.failure = f"not accepted before: {warm.status_code} {warm.text}"
                        break
            except httpx.HTTPError as exc:
                result.failure = f"not accepted before: {exc!r}"
            try:
                ready.wait()
            except threading.BrokenBarrierError:
                return
            if result.failure:
                return
            while not stop.is_set():
                try:
                    response = api.whoami(probe.credential)
                except httpx.HTTPError as exc:
                    result.failure = f"transport error {exc!r}"
                    return
                now = time.perf_counter()
                result.requests += 1
                if response.status_code == 401:
                    result.refused_at = now
                    return
                if response.status_code != 200:
                    result.failure = f"{response.status_code} {response.text}"
                    return
                if "end" in times and now - times["end"] > timeout:
                    result.failure = f"still accepted {timeout:g} s after the revocation"
                    return
                time.sleep(POLL_INTERVAL)

    threads = [threading.Thread(target=poll, args=(probe,), daemon=True) for probe in probes]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        ready.wait()
    failures = {name: r.failure for name, r in results.items() if r.failure}
    if failures:
        stop.set()
        for thread in threads:
            thread.join(15)
        raise AssertionError(f"a probe did not accept the credential before: {failures}")
    times["start"] = time.perf_counter()
    try:
        revoke()
    except BaseException:
        stop.set()
        raise
    times["end"] = time.perf_counter()
    for thread in threads:
        thread.join(timeout + 15)
    stop.set()
    lags: dict[str, float] = {}
    problems: list[str] = []
    for name, result in results.items():
        if result.failure:
            problems.append(f"{name}: {result.failure}")
        elif result.refused_at is None:
            problems.append(f"{name}: never refused")
        elif result.refused_at < times["start"]:
            problems.append(f"{name}: refused before the revocation started")
        else:
            lags[name] = max(0.0, result.refused_at - times["end"])
    assert not problems, "; ".join(problems)
    return lags


@contextlib.contextmanager
def apis(*instances: LiveServer) -> Iterator[list[Api]]:
    """One :class:`Api` per instance, closed afterwards."""
    opened = [Api(instance) for instance in instances]
    try:
        yield opened
    finally:
        for api in opened:
            api.close()
