"""A ``limits`` async storage on Redis for the sign-in throttle.

``limits`` ships a Redis storage of its own (``async+redis://``, redis-py
included), but it measures windows with Redis key TTLs, i.e. the Redis
server's clock, while keyturn measures every expiry with one injected clock
(the same :class:`~keyturn.clock.Clock` the throttle computes ``Retry-After``
with, frozen in tests). So this storage keeps the fixed-window counters the way
:class:`~keyturn.stores.sql.throttle.SqlThrottleStorage` does, on that clock:

``keyturn:throttle:<limits key>`` is a hash ``{count, expires_at}``; one Lua
script increments it, starting a new window when the stored one has ended. The
key also gets a TTL of the window plus a minute, so Redis drops dead counters
by itself (no sweep needed). The ``limits`` key is built from SHA-256 digests:
no e-mail or IP address reaches Redis.
"""

from __future__ import annotations

from limits.aio.storage import Storage

from keyturn.clock import Clock
from keyturn.errors import StoreUnavailable
from keyturn.stores.redis.connection import KEY_PREFIX, RedisConnection

__all__ = ["THROTTLE_PREFIX", "RedisThrottleStorage"]

#: The prefix of every throttle counter.
THROTTLE_PREFIX = f"{KEY_PREFIX}throttle:"

#: Seconds a counter key outlives its window (clock differences, slow requests).
_TTL_MARGIN = 60

# KEYS: counter. ARGV: now, amount, new expires_at, ttl_ms.
_INCR = """
local f = redis.call('HMGET', KEYS[1], 'count', 'expires_at')
if f[1] and tonumber(f[2]) > tonumber(ARGV[1]) then
  return redis.call('HINCRBY', KEYS[1], 'count', ARGV[2])
end
redis.call('HSET', KEYS[1], 'count', ARGV[2], 'expires_at', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return tonumber(ARGV[2])
"""


class RedisThrottleStorage(Storage):
    """Fixed-window counters in Redis, measured by ``clock``.

    Implements the ``limits.aio.storage.Storage`` interface the fixed-window
    strategy needs. Redis failures surface as
    :class:`~keyturn.errors.StoreUnavailable` (or, with ``wrap_exceptions=True``,
    as ``limits.errors.StorageError``).
    """

    STORAGE_SCHEME = None  # built directly, never from a limits URI

    def __init__(
        self,
        connection: RedisConnection,
        *,
        clock: Clock,
        wrap_exceptions: bool = False,
    ) -> None:
        super().__init__(wrap_exceptions=wrap_exceptions)
        self.connection = connection
        self.clock = clock
        self._incr = connection.script(_INCR)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return StoreUnavailable

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` and return the new count; a missing or ended window
        starts over at ``amount`` for ``expiry`` seconds."""
        now = self.clock.now()
        with self.connection.errors():
            count = await self._incr(
                keys=[THROTTLE_PREFIX + key],
                args=[repr(now), amount, repr(now + expiry), (int(expiry) + _TTL_MARGIN) * 1000],
            )
        return int(count)

    async def _read(self, key: str) -> tuple[int, float] | None:
        with self.connection.errors():
            count, expires_at = await self.connection.client.hmget(
                THROTTLE_PREFIX + key, ["count", "expires_at"]
            )
        if count is None or expires_at is None or float(expires_at) <= self.clock.now():
            return None
        return int(count), float(expires_at)

    async def get(self, key: str) -> int:
        """The count, 0 when missing or expired."""
        found = await self._read(key)
        return found[0] if found else 0

    async def get_expiry(self, key: str) -> float:
        """When the window ends (POSIX seconds); now when there is none."""
        found = await self._read(key)
        return found[1] if found else self.clock.now()

    async def clear(self, key: str) -> None:
        """Forget one counter."""
        with self.connection.errors():
            await self.connection.client.delete(THROTTLE_PREFIX + key)

    async def reset(self) -> int | None:
        """Forget every counter (SCAN + UNLINK); returns how many there were."""
        client = self.connection.client
        removed = 0
        with self.connection.errors():
            batch: list[str] = []
            async for key in client.scan_iter(match=THROTTLE_PREFIX + "*", count=500):
                batch.append(key)
                if len(batch) >= 500:
                    removed += await client.unlink(*batch)
                    batch.clear()
            if batch:
                removed += await client.unlink(*batch)
        return removed

    async def check(self) -> bool:
        """True when Redis answers PING."""
        try:
            await self.connection.ping()
        except StoreUnavailable:
            return False
        return True
