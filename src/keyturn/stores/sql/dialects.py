"""Small helpers the wave-2 SQL stores share: dialect inserts and JSON columns.

``INSERT ... ON CONFLICT`` is spelled the same on SQLite and PostgreSQL but
SQLAlchemy builds it from each dialect's own ``insert``; :func:`insert_for`
picks the right one for an engine, so a store can insert-or-ignore and upsert
in one statement, atomically, instead of reading first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from keyturn.errors import ConfigurationError, UserNotFound
from keyturn.stores.sql.engine import connect
from keyturn.stores.sql.schema import users

__all__ = [
    "SqlStore",
    "dump_strings",
    "insert_for",
    "is_postgres",
    "load_strings",
    "optional_float",
    "raise_for_integrity",
]


class SqlStore:
    """The base of the wave-2 SQL stores: the engine, and a repr without it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def optional_float(value: Any) -> float | None:
    """A nullable numeric column as a float (or None)."""
    return None if value is None else float(value)


def is_postgres(engine: AsyncEngine) -> bool:
    """True for a PostgreSQL engine (else SQLite)."""
    return engine.dialect.name == "postgresql"


def insert_for(engine: AsyncEngine, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """The dialect's ``INSERT`` for ``table``, with ``on_conflict_do_*`` available.

    Raises:
        ConfigurationError: the engine is neither SQLite nor PostgreSQL.
    """
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    if engine.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise ConfigurationError(f"unsupported database backend {engine.dialect.name!r}")


def dump_strings(values: Iterable[str]) -> str:
    """A JSON array of ``values``, in order."""
    return json.dumps(list(values), separators=(",", ":"))


def load_strings(text: str) -> tuple[str, ...]:
    """The strings of a JSON array written by :func:`dump_strings`."""
    return tuple(str(value) for value in json.loads(text))


async def raise_for_integrity(engine: AsyncEngine, user_id: str | None) -> NoReturn:
    """Translate the ``IntegrityError`` being handled for a row that names ``user_id``.

    Raises:
        UserNotFound: ``user_id`` is not a user (the foreign key failed).
        sqlalchemy.exc.IntegrityError: anything else (a duplicate key), re-raised.
    """
    if user_id is not None:
        query = sa.select(users.c.id).where(users.c.id == user_id)
        async with connect(engine) as connection:
            missing = (await connection.execute(query)).first() is None
        if missing:
            raise UserNotFound() from None
    raise  # the IntegrityError being handled: callers call this in their except block
