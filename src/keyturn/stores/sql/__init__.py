"""SQL storage for SQLite and PostgreSQL through one SQLAlchemy 2 Core package.

Tables live in one :data:`metadata` (:mod:`.schema`; the Alembic migrations in
``stores/sql/migrations`` create exactly these); each store is a small class over an
:class:`~sqlalchemy.ext.asyncio.AsyncEngine` (:mod:`.user_store`, :mod:`.session_store`),
bundled by :class:`SqlStorage`. Core, not the ORM: rows map to the frozen records
of :mod:`keyturn.stores.protocols` by hand, which is faster and keeps the records free
of persistence machinery. Connections and the fail-closed error mapping are in
:mod:`.engine`. The few statements of the refresh grant's hot path (a token's read
and rotation, a user's read by id) skip Core and run as plain SQL on the driver
(:mod:`.direct`, :mod:`.refresh_sql`): one thread hop or one round trip each.

Drivers (``aiosqlite``, ``asyncpg``) are imported by SQLAlchemy only when an
engine first connects, so importing this package needs neither.
"""

from keyturn.stores.sql.client_store import SqlClientStore
from keyturn.stores.sql.engine import (
    connect,
    create_engine_for,
    is_connection_error,
    safe_url,
    unavailable,
)
from keyturn.stores.sql.key_store import SqlKeyStore
from keyturn.stores.sql.refresh_store import SqlRefreshStore
from keyturn.stores.sql.revocation_store import SqlRevocationStore
from keyturn.stores.sql.schema import NAMING_CONVENTION, metadata, sessions, signing_keys, users
from keyturn.stores.sql.session_store import SqlSessionStore
from keyturn.stores.sql.storage import SqlStorage
from keyturn.stores.sql.user_store import SqlUserStore

__all__ = [
    "NAMING_CONVENTION",
    "SqlClientStore",
    "SqlKeyStore",
    "SqlRefreshStore",
    "SqlRevocationStore",
    "SqlSessionStore",
    "SqlStorage",
    "SqlUserStore",
    "connect",
    "create_engine_for",
    "is_connection_error",
    "metadata",
    "safe_url",
    "sessions",
    "signing_keys",
    "unavailable",
    "users",
]
