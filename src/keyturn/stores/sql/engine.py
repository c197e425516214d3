"""Engines and connections: SQLite pragmas, PostgreSQL pooling, failing closed.

Drivers (``aiosqlite``, ``asyncpg``) are imported by SQLAlchemy only when an
engine first connects, so importing this module needs neither.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from keyturn.errors import ConfigurationError, StoreUnavailable

#: Run on every SQLite connection: the pooled ones and the direct one
#: (:mod:`keyturn.stores.sql.direct`).
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA busy_timeout=5000",
)


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
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
        ConfigurationError: the URL names a backend other than SQLite or PostgreSQL,
            or PostgreSQL without asyncpg installed (the ``[postgres]`` extra).
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
        try:
            return create_async_engine(parsed, **options)  # imports the driver
        except ImportError as exc:
            if (exc.name or "").partition(".")[0] != "asyncpg":
                raise
            raise ConfigurationError(
                "a postgresql:// --database-url needs asyncpg, which is not installed: "
                "pip install 'keyturn[postgres]'"
            ) from None
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
