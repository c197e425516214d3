"""The TOTP replay guard on Redis: ``SET key 1 NX PX ttl`` (#15).

With ``--redis-url`` every instance shares this store, so a TOTP code accepted
by one instance is refused by every other until its time step has left the
window. The key is the user id and the step; the value carries nothing. Redis
expires the key by itself (after ``expires_at - now`` by the caller's clock,
so a skewed Redis clock does not matter), so no sweep is needed.
"""

from __future__ import annotations

from keyturn.stores.redis.connection import KEY_PREFIX, RedisConnection

__all__ = ["RedisTotpReplayStore"]

_PREFIX = KEY_PREFIX + "totp-used:"


class RedisTotpReplayStore:
    """:class:`keyturn.mfa.store.TotpReplayStore` on Redis."""

    def __init__(self, redis: RedisConnection) -> None:
        self._redis = redis

    def __repr__(self) -> str:
        return f"RedisTotpReplayStore({self._redis.safe_url})"

    async def claim(self, user_id: str, step: int, expires_at: float, now: float) -> bool:
        """True the first time ``(user_id, step)`` is claimed before ``expires_at``.

        Raises:
            StoreUnavailable: Redis cannot be reached (the code is then refused).
        """
        if expires_at <= now:
            return False
        key = f"{_PREFIX}{user_id}:{step}"
        with self._redis.errors():
            ttl_ms = max(1, int((expires_at - now) * 1000))
            created = await self._redis.client.set(key, "1", nx=True, px=ttl_ms)
        return bool(created)
