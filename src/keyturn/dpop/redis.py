"""The ``jti`` replay cache in Redis (or Valkey), shared by every keyturn instance.

One command per proof: ``SET keyturn:dpop:jti:<key> 1 NX EX <ttl>``, atomic on the
server, so of two instances receiving the same proof exactly one accepts it. The
key is :func:`~keyturn.dpop.store.replay_key`, a SHA-256 hex digest: nothing the
client wrote reaches Redis, and every key has the same length. Entries expire by
themselves (no sweep); a key evicted under ``allkeys-*`` memory pressure would let
its proof be replayed within the window, so run Redis with ``noeviction`` (as for
the revocation list).

Any Redis or socket failure becomes :class:`~keyturn.errors.StoreUnavailable`, so
the caller refuses the proof (fails closed) instead of accepting it unchecked.
redis-py is imported only when this cache is used (the ``redis`` extra).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from keyturn.errors import StoreUnavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["KEY_PREFIX", "RedisReplayCache"]

#: The prefix of every key this cache writes.
KEY_PREFIX: Final = "keyturn:dpop:jti:"
DEFAULT_TIMEOUT: Final = 1.0


class RedisReplayCache:
    """A :class:`~keyturn.dpop.store.ReplayCache` on a ``redis.asyncio`` client.

    Args:
        client: the client to use, typically keyturn's shared one
            (``RedisConnection.client``); it is not closed by this cache.
        unavailable: turns a Redis error into the ``StoreUnavailable`` to raise
            (``RedisConnection.unavailable`` names the server, password masked);
            by default the message names only the error class.
        prefix: the key prefix.
    """

    __slots__ = ("_client", "_errors", "_owned", "_prefix", "_unavailable")

    def __init__(
        self,
        client: Redis,
        *,
        unavailable: Callable[[BaseException], StoreUnavailable] | None = None,
        prefix: str = KEY_PREFIX,
    ) -> None:
        from redis.exceptions import RedisError

        self._client = client
        self._unavailable = unavailable or _default_unavailable
        self._prefix = prefix
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
        self._owned = False

    @classmethod
    def from_url(cls, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> RedisReplayCache:
        """A cache on its own client for ``url`` (short timeouts; close it with
        :meth:`aclose`). For processes without keyturn's shared Redis connection,
        such as a downstream service using ``keyturn.verify``.

        Raises:
            ValueError: the URL cannot be parsed.
        """
        from redis.asyncio import Redis

        client = Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout, decode_responses=True
        )
        cache = cls(client)
        cache._owned = True
        return cache

    def __repr__(self) -> str:
        return f"RedisReplayCache(prefix={self._prefix!r})"

    async def add(self, key: str, ttl: int) -> bool:
        """Record ``key`` for ``ttl`` seconds unless already recorded; see
        :meth:`keyturn.dpop.store.ReplayCache.add`.

        Raises:
            StoreUnavailable: Redis did not answer, or refused the write.
            ValueError: ``ttl`` is below 1.
        """
        if ttl < 1:
            raise ValueError("ttl must be at least 1 second")
        try:
            created = await self._client.set(self._prefix + key, "1", nx=True, ex=ttl)
        except self._errors as exc:
            raise self._unavailable(exc) from exc
        return bool(created)

    async def aclose(self) -> None:
        """Close the client if :meth:`from_url` made it (a shared one is left open)."""
        if self._owned:
            await self._client.aclose()


def _default_unavailable(exc: BaseException) -> StoreUnavailable:
    return StoreUnavailable(f"cannot reach Redis for the DPoP replay cache: {type(exc).__name__}")
