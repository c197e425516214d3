"""The bundle of every SQL-backed store over one engine."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from keyturn.clock import Clock
from keyturn.errors import StoreUnavailable
from keyturn.stores.protocols import (
    ClientStore,
    KeyStore,
    RefreshStore,
    RevocationStore,
    SessionStore,
    UserStore,
)
from keyturn.stores.sql.client_store import SqlClientStore
from keyturn.stores.sql.direct import direct_for
from keyturn.stores.sql.engine import connect, unavailable
from keyturn.stores.sql.key_store import SqlKeyStore
from keyturn.stores.sql.refresh_store import SqlRefreshStore
from keyturn.stores.sql.revocation_store import SqlRevocationStore
from keyturn.stores.sql.session_store import SqlSessionStore
from keyturn.stores.sql.throttle import SqlThrottleStorage
from keyturn.stores.sql.user_store import SqlUserStore
from keyturn.stores.wave2 import Wave2Stores, sql_wave2_stores  # wave 2


class SqlStorage:
    """Every SQL-backed store over one engine (and its connection pool)."""

    durable = True

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        #: Plain SQL for the refresh grant's hot statements (keyturn.stores.sql.direct).
        self.direct = direct_for(engine)
        self.users: UserStore = SqlUserStore(engine, self.direct)
        self.sessions: SessionStore = SqlSessionStore(engine)
        self.keys: KeyStore = SqlKeyStore(engine)
        self.refresh: RefreshStore = SqlRefreshStore(engine, self.direct)
        self.revocations: RevocationStore = SqlRevocationStore(engine)
        self.clients: ClientStore = SqlClientStore(engine, self.direct)
        # --- wave 2: outbox, mfa, oauth (keyturn.stores.wave2) ---
        self.wave2: Wave2Stores = sql_wave2_stores(engine)

    def throttle_storage(self, clock: Clock) -> SqlThrottleStorage:
        """The throttle counters in the ``login_throttle`` table."""
        return SqlThrottleStorage(self.engine, clock=clock)

    async def ping(self) -> None:
        """Run ``SELECT 1``.

        Raises:
            StoreUnavailable: the database cannot be reached; the message names it
                with the password masked.
        """
        try:
            async with connect(self.engine) as connection:
                await connection.execute(sa.text("SELECT 1"))
        except StoreUnavailable:
            raise
        except Exception as exc:  # any failure to answer SELECT 1 is an outage
            raise unavailable(self.engine, exc) from exc

    async def close(self) -> None:
        """Close the direct connection and dispose of the engine's connection pool."""
        try:
            await self.direct.close()
        finally:
            await self.engine.dispose()
