"""The servers of one mode: instance A (measured), and instance B on the same
stores (for revocation lag and memory), each a real ``keyturn serve`` process.

Both instances share one fresh SQLite file (and, for the Redis mode, one Redis),
as two instances behind a load balancer would share PostgreSQL and Redis. A is
started pinned to the server CPU; B is not pinned.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from keyturn.bench.accounts import Credential, check_whoami, login, password_grant, register
from keyturn.bench.errors import BenchError
from keyturn.bench.machine import SERVER_CPU
from keyturn.bench.modes import Mode
from keyturn.bench.servers import LOOPBACK, KeyturnServer, sqlite_url

__all__ = ["BENCH_USER", "Deployment", "check_redis_url", "redis_key_count"]

#: The user whose credential is measured.
BENCH_USER = "bench@bench.example"


def check_redis_url(url: str) -> str:
    """Accept only a Redis on this machine: the benchmark sends nothing elsewhere.

    Raises:
        BenchError: not a redis:// or unix:// URL on loopback.
    """
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return url
    if parts.scheme not in ("redis", "rediss"):
        raise BenchError(f"--redis-url must be a redis:// URL, not {parts.scheme or url!r}")
    if parts.hostname not in (LOOPBACK, "localhost", "::1"):
        raise BenchError(
            f"--redis-url must point at this machine (127.0.0.1), not {parts.hostname}"
        )
    return url


def redis_key_count(url: str) -> int:
    """``DBSIZE`` of the Redis database at ``url``.

    Raises:
        BenchError: redis-py is missing or the server does not answer.
    """
    try:
        import redis
    except ImportError:
        raise BenchError("the Redis mode needs redis-py: pip install 'keyturn[redis]'") from None
    client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        return int(client.dbsize())
    except redis.RedisError as exc:
        raise BenchError(f"Redis at {urlsplit(url).netloc} did not answer: {exc}") from None
    finally:
        client.close()


class Deployment:
    """Instance A and (once :meth:`start_secondary` ran) instance B of one mode."""

    def __init__(self, mode: Mode, root: Path, *, redis_url: str | None = None) -> None:
        self.mode = mode
        self.root = root
        self.redis_url = redis_url if mode.store == "redis" else None
        self.database_url = sqlite_url(root / "keyturn.db")
        self.primary = KeyturnServer(
            (), workdir=root / "a", database_url=self.database_url, name=f"{mode.name} A"
        )
        # Instances behind one load balancer share one issuer (and so one audience):
        # a token A signed must verify on B.
        args = [*mode.serve_args(self.redis_url), "--issuer", self.primary.url]
        self.primary.args = args
        self.secondary = KeyturnServer(
            args, workdir=root / "b", database_url=self.database_url, name=f"{mode.name} B"
        )
        self._secondary_started = False
        self.credential: Credential | None = None

    # --- life cycle --------------------------------------------------------------

    def start_primary(self, *, cpu: int | None = SERVER_CPU) -> Credential:
        """Start A, sign the benchmark user in, check that whoami accepts the
        credential (and, in the Redis mode, that the server really wrote to Redis).

        Raises:
            BenchError: anything on the way failed.
        """
        keys_before = redis_key_count(self.redis_url) if self.redis_url else 0
        self.primary.start(cpu=cpu)
        register(self.primary, BENCH_USER)
        self.credential = self.sign_in(BENCH_USER)
        check_whoami(self.primary, self.credential)
        if self.redis_url and redis_key_count(self.redis_url) <= keys_before:
            raise BenchError(
                "the server accepted --redis-url but wrote nothing to Redis "
                "(this keyturn does not keep sessions in Redis yet)"
            )
        return self.credential

    def sign_in(self, email: str) -> Credential:
        """A fresh credential of this mode's kind for ``email`` (on A)."""
        if self.mode.credential == "session":
            return login(self.primary, email)
        return password_grant(self.primary, email)

    def start_secondary(self) -> KeyturnServer:
        """Start B on A's stores (once); it must accept A's credential.

        Raises:
            BenchError: it did not start or did not accept the credential.
        """
        if not self._secondary_started:
            self.secondary.start(cpu=None)
            self._secondary_started = True
            if self.credential is not None:
                check_whoami(self.secondary, self.credential)
        return self.secondary

    def close(self) -> None:
        """Stop both instances."""
        for server in (self.secondary, self.primary):
            with contextlib.suppress(Exception):
                server.stop()

    def __enter__(self) -> Deployment:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
