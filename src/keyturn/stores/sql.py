"""SQL storage for SQLite and PostgreSQL through one SQLAlchemy 2 Core module.

Tables live in one :data:`metadata` (the Alembic migrations in
``stores/migrations`` create exactly these); each store is a small class over an
:class:`~sqlalchemy.ext.asyncio.AsyncEngine`. Core, not the ORM: rows map to the
frozen records of :mod:`keyturn.stores.base` by hand, which is faster and keeps
the records free of persistence machinery.

Drivers (``aiosqlite``, ``asyncpg``) are imported by SQLAlchemy only when an
engine first connects, so importing this module needs neither.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from keyturn.errors import ConfigurationError, EmailTaken, StoreUnavailable, UserNotFound
from keyturn.stores.base import User, UserStore, normalize_email_key

#: Constraint names are fixed so migrations (and SQLite batch mode) can find them.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

# --- tables ---------------------------------------------------------------------------
# One block per store. A new table goes here *and* into a new migration revision;
# ``tests/unit/test_migrations.py`` checks the two agree.

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("email_key", sa.String(320), nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("roles", sa.Text, nullable=False),  # JSON array of strings
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# --- engines --------------------------------------------------------------------------

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=5000",
)


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def create_engine_for(url: str, **options: Any) -> AsyncEngine:
    """Build the async engine for a keyturn database URL.

    SQLite connections get WAL journaling, foreign keys, ``synchronous=NORMAL``
    and a 5 s busy timeout (so concurrent writers wait instead of failing); an
    in-memory SQLite database uses one shared connection, or every connection
    would see its own empty database. PostgreSQL pools check connections before
    use, so a restarted server costs one retry rather than a failed request.
    ``options`` go to :func:`~sqlalchemy.ext.asyncio.create_async_engine`.

    Raises:
        ConfigurationError: the URL names a backend other than SQLite or PostgreSQL.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.drivername == "sqlite":
            parsed = parsed.set(drivername="sqlite+aiosqlite")
        if parsed.database in (None, "", ":memory:"):
            options.setdefault("poolclass", StaticPool)
            options.setdefault("connect_args", {"check_same_thread": False})
        engine = create_async_engine(parsed, **options)
        sa.event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+asyncpg")
        options.setdefault("pool_pre_ping", True)
        options.setdefault("connect_args", {"timeout": 10})
        return create_async_engine(parsed, **options)
    raise ConfigurationError(f"unsupported database backend {backend!r}")


def safe_url(engine: AsyncEngine) -> str:
    """The engine's URL with the password masked, for messages and logs."""
    return engine.url.render_as_string(hide_password=True)


def _reason(exc: BaseException, engine: AsyncEngine) -> str:
    """A short, password-free description of a connection error."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    password = engine.url.password
    if password:
        text = text.replace(str(password), "***")
    return text[:200]


def unavailable(engine: AsyncEngine, exc: BaseException) -> StoreUnavailable:
    """The :class:`StoreUnavailable` to raise for a connection error on ``engine``."""
    return StoreUnavailable(f"cannot reach database {safe_url(engine)}: {_reason(exc, engine)}")


def is_connection_error(exc: BaseException) -> bool:
    """True when ``exc`` means the database could not be reached or dropped us."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, OSError, TimeoutError))


@asynccontextmanager
async def connect(engine: AsyncEngine, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
    """A connection (in a committed transaction when ``write``), failing closed.

    Connection errors, on connect or mid-statement, become
    :class:`StoreUnavailable`; every other error (constraint violations, for
    instance) passes through for the caller to translate.

    Raises:
        StoreUnavailable: the database is unreachable or dropped the connection.
    """
    try:
        if write:
            async with engine.begin() as connection:
                yield connection
        else:
            async with engine.connect() as connection:
                yield connection
    except StoreUnavailable:
        raise
    except Exception as exc:
        if is_connection_error(exc):
            raise unavailable(engine, exc) from exc
        raise


# --- users ----------------------------------------------------------------------------


def _user_from_row(row: sa.RowMapping) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        email_key=row["email_key"],
        password_hash=row["password_hash"],
        roles=tuple(json.loads(row["roles"])),
        disabled=bool(row["disabled"]),
        created_at=float(row["created_at"]),
    )


class SqlUserStore:
    """Accounts in the ``users`` table; ``email_key`` is unique in the schema,
    so two concurrent sign-ups with one address cannot both succeed."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, user: User) -> None:
        values = {
            "id": user.id,
            "email": user.email,
            "email_key": user.email_key,
            "password_hash": user.password_hash,
            "roles": json.dumps(list(user.roles)),
            "disabled": user.disabled,
            "created_at": user.created_at,
        }
        try:
            async with connect(self._engine, write=True) as connection:
                await connection.execute(users.insert().values(**values))
        except sa_exc.IntegrityError:
            raise EmailTaken() from None

    async def get(self, user_id: str) -> User | None:
        return await self._one(users.c.id == user_id)

    async def get_by_email(self, email: str) -> User | None:
        return await self._one(users.c.email_key == normalize_email_key(email))

    async def list(self) -> list[User]:
        query = sa.select(users).order_by(users.c.created_at, users.c.email_key)
        async with connect(self._engine) as connection:
            result = await connection.execute(query)
            return [_user_from_row(row) for row in result.mappings()]

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self._update(user_id, password_hash=password_hash)

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        await self._update(user_id, disabled=disabled)

    async def _one(self, condition: sa.ColumnElement[bool]) -> User | None:
        async with connect(self._engine) as connection:
            result = await connection.execute(sa.select(users).where(condition))
            row = result.mappings().first()
        return _user_from_row(row) if row is not None else None

    async def _update(self, user_id: str, **values: Any) -> None:
        statement = users.update().where(users.c.id == user_id).values(**values)
        async with connect(self._engine, write=True) as connection:
            result = await connection.execute(statement)
        if result.rowcount == 0:
            raise UserNotFound()


# --- the bundle -----------------------------------------------------------------------


class SqlStorage:
    """Every SQL-backed store over one engine (and its connection pool)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.users: UserStore = SqlUserStore(engine)

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
        """Dispose of the engine's connection pool."""
        await self.engine.dispose()
