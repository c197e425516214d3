"""One Redis client per keyturn instance: short timeouts, failing closed.

Every command keyturn sends goes through :meth:`RedisConnection.errors`, which
turns any Redis or socket failure into :class:`~keyturn.errors.StoreUnavailable`
with a one-line message naming the server with its password masked. Timeouts
are short (1 s to connect, 1 s to answer) and a broken connection is retried
once on a fresh one, so a dead server is reported in about a second (never a
hang), and a restarted server is used again on the next command without any
reconnecting by hand.

Options in the URL's query string (``?socket_timeout=2``, ``?health_check_interval=10``,
…) are redis-py's and override these defaults.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError

from keyturn.errors import ConfigurationError, StoreUnavailable

__all__ = ["DEFAULT_TIMEOUT", "KEY_PREFIX", "RedisConnection", "safe_redis_url", "text"]

logger = logging.getLogger("keyturn.stores.redis")

#: The prefix of every key keyturn writes.
KEY_PREFIX = "keyturn:"

#: Seconds to connect and to wait for an answer.
DEFAULT_TIMEOUT = 1.0

#: A connection idle for longer than this many seconds is PINGed before reuse.
HEALTH_CHECK_INTERVAL = 15

#: Eviction policies that may drop keys without a TTL (the revocation list).
_UNSAFE_POLICIES = ("allkeys-lru", "allkeys-lfu", "allkeys-random")


def safe_redis_url(url: str) -> str:
    """``url`` without its password and query string, for messages and logs."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, host = netloc.rpartition("@")
            user, colon, _password = userinfo.partition(":")
            # Without a colon the one name may be a password (``redis://secret@host``).
            netloc = f"{user}:***@{host}" if colon else f"***@{host}"
        return f"{parts.scheme}://{netloc}{parts.path}"
    except ValueError:
        return "redis://<unparseable URL>"


def text(value: object) -> str:
    """A reply item as ``str`` (the client decodes replies; this pins the type)."""
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisConnection:
    """A ``redis.asyncio`` client over a pool, with keyturn's error mapping.

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL (user, password, db).
        timeout: seconds to connect and to wait for each answer.

    Raises:
        ConfigurationError: the URL cannot be parsed.
    """

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.safe_url = safe_redis_url(url)
        try:
            parts = urlsplit(url)
            self._secrets = [s for s in (parts.password, parts.username) if s]
            self.client: Redis = Redis.from_url(
                url,
                socket_connect_timeout=timeout,
                socket_timeout=timeout,
                health_check_interval=HEALTH_CHECK_INTERVAL,
                retry=Retry(NoBackoff(), 1),
                decode_responses=True,
                client_name="keyturn",
            )
            # Builds (does not connect) one connection, so that an unknown option in
            # the query string is refused now rather than at the first command.
            pool = self.client.connection_pool
            pool.connection_class(**pool.connection_kwargs)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"invalid --redis-url {self.safe_url}: {exc}") from None

    def unavailable(self, exc: BaseException) -> StoreUnavailable:
        """The :class:`StoreUnavailable` for ``exc``: one line, no password."""
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        for secret in self._secrets:
            reason = reason.replace(secret, "***")
        return StoreUnavailable(f"cannot reach Redis {self.safe_url}: {reason[:200]}")

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Run Redis commands, failing closed.

        Raises:
            StoreUnavailable: any Redis error (connection refused or lost, timeout,
                authentication, out of memory, a read-only replica, …).
        """
        try:
            yield
        except StoreUnavailable:
            raise
        except (RedisError, OSError, TimeoutError) as exc:
            raise self.unavailable(exc) from exc

    def script(self, lua: str) -> AsyncScript:
        """Register a Lua script (sent by SHA; reloaded by redis-py after a restart)."""
        return self.client.register_script(lua)

    async def ping(self) -> None:
        """Send ``PING``.

        Raises:
            StoreUnavailable: Redis did not answer.
        """
        with self.errors():
            await self.client.ping()

    async def check_eviction_policy(self) -> str | None:
        """Log a warning when ``maxmemory-policy`` may evict keys without a TTL
        (the revocation list: a revoked token would be accepted again). Returns
        the policy, or None when the server does not say."""
        try:
            with self.errors():
                info: dict[str, Any] = await self.client.info("memory")
        except StoreUnavailable as exc:
            if not isinstance(exc.__cause__, ResponseError):
                raise
            # INFO refused (an ACL without +info, a managed service): not an outage.
            logger.info("cannot check maxmemory-policy of Redis %s: %s", self.safe_url, exc)
            return None
        policy = info.get("maxmemory_policy")
        if isinstance(policy, str) and policy in _UNSAFE_POLICIES:
            logger.warning(
                "Redis %s has maxmemory-policy %s: under memory pressure it may evict "
                "revocation entries; use noeviction (see docs/guides/redis.md)",
                self.safe_url,
                policy,
            )
        return policy if isinstance(policy, str) else None

    async def close(self) -> None:
        """Close the pool's connections."""
        await self.client.aclose()
