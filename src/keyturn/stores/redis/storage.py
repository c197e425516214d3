"""The scale-out storage bundle: SQL for the durable records, Redis for the
fast-changing ones.

Users, signing keys, refresh families (with their grace payloads, which must
change atomically with a rotation), clients and the throttle fallback stay in
the SQL database (PostgreSQL or SQLite); browser sessions and the revocation
log live in Redis.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from keyturn.clock import Clock
from keyturn.stores.protocols import (
    ClientStore,
    KeyStore,
    RefreshStore,
    RevocationStore,
    SessionStore,
    UserStore,
)
from keyturn.stores.redis.connection import RedisConnection
from keyturn.stores.redis.revocation_store import RedisRevocationStore
from keyturn.stores.redis.session_store import RedisSessionStore
from keyturn.stores.redis.throttle import RedisThrottleStorage
from keyturn.stores.sql import SqlStorage
from keyturn.stores.wave2 import Wave2Stores  # wave 2

__all__ = ["SqlRedisStorage"]


class SqlRedisStorage:
    """A :class:`~keyturn.stores.protocols.Storage` over a SQL database and Redis.

    Args:
        sql: the SQL storage (its users, keys, refresh and clients stores are used).
        redis: the Redis connection (sessions and revocations).
    """

    durable = True

    def __init__(self, sql: SqlStorage, redis: RedisConnection) -> None:
        self.sql = sql
        self.redis = redis
        self.users: UserStore = sql.users
        self.keys: KeyStore = sql.keys
        self.refresh: RefreshStore = sql.refresh
        self.clients: ClientStore = sql.clients
        self.sessions: SessionStore = RedisSessionStore(redis)
        self.revocations: RevocationStore = RedisRevocationStore(redis)
        # --- wave 2: outbox, mfa, oauth: the SQL stores (keyturn.stores.wave2) ---
        self.wave2: Wave2Stores = sql.wave2

    @property
    def engine(self) -> AsyncEngine:
        """The SQL engine (migrations, the SQL throttle storage)."""
        return self.sql.engine

    def throttle_storage(self, clock: Clock) -> RedisThrottleStorage:
        """The throttle counters in Redis (``keyturn:throttle:*``)."""
        return RedisThrottleStorage(self.redis, clock=clock)

    async def ping(self) -> None:
        """Check the database and Redis, both at once.

        Raises:
            StoreUnavailable: either is unreachable (the database's error first).
        """
        results = await asyncio.gather(self.sql.ping(), self.redis.ping(), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def close(self) -> None:
        """Close both connection pools."""
        try:
            await self.redis.close()
        finally:
            await self.sql.close()
