"""Accounts in the ``users`` table."""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from keyturn.errors import EmailTaken, UserNotFound
from keyturn.stores.records import User, normalize_email_key
from keyturn.stores.sql.direct import PostgresDirect, SqliteDirect
from keyturn.stores.sql.engine import connect
from keyturn.stores.sql.schema import users

#: Imported bcrypt hashes: (LIKE prefix, position of the two-digit cost).
_BCRYPT_PREFIXES = (("$2", 5), ("bcrypt$$2", 12))
#: Imported Django PBKDF2 hashes; the iteration count follows the prefix.
_PBKDF2_PREFIXES = ("pbkdf2_sha256$", "pbkdf2_sha1$")
_MAX_ITERATION_DIGITS = 9


_COLUMNS = (
    "id",
    "email",
    "email_key",
    "password_hash",
    "roles",
    "disabled",
    "created_at",
    "email_verified",
)
#: The read by id as plain SQL (:mod:`keyturn.stores.sql.direct`): one hop or
#: one round trip instead of a trip through SQLAlchemy Core.
_GET_BY_ID = f"SELECT {', '.join(_COLUMNS)} FROM users WHERE id = ?"  # noqa: S608 (constant)


def _like_prefix(prefix: str) -> str:
    """``prefix`` with LIKE's wildcards escaped (``\\`` is the escape character)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _user_from_row(row: Mapping[str, Any] | sa.RowMapping) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        email_key=row["email_key"],
        password_hash=row["password_hash"],
        roles=tuple(json.loads(row["roles"])),
        disabled=bool(row["disabled"]),
        created_at=float(row["created_at"]),
        email_verified=bool(row["email_verified"]),
    )


class SqlUserStore:
    """Accounts in the ``users`` table; ``email_key`` is unique in the schema,
    so two concurrent sign-ups with one address cannot both succeed."""

    def __init__(self, engine: AsyncEngine, direct: SqliteDirect | PostgresDirect) -> None:
        self._engine = engine
        self._direct = direct  # get(): every grant and bearer cache miss reads by id

    async def add(self, user: User) -> None:
        values = {
            "id": user.id,
            "email": user.email,
            "email_key": user.email_key,
            "password_hash": user.password_hash,
            "roles": json.dumps(list(user.roles)),
            "disabled": user.disabled,
            "created_at": user.created_at,
            "email_verified": user.email_verified,
        }
        try:
            async with connect(self._engine, write=True) as connection:
                await connection.execute(users.insert().values(**values))
        except sa_exc.IntegrityError:
            raise EmailTaken() from None

    async def get(self, user_id: str) -> User | None:
        row = await self._direct.read_one(_GET_BY_ID, (user_id,))
        if row is None:
            return None
        return _user_from_row(dict(zip(_COLUMNS, row, strict=True)))

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

    async def set_email_verified(self, user_id: str, verified: bool) -> None:
        await self._update(user_id, email_verified=verified)

    async def set_email(self, user_id: str, email: str, *, verified: bool) -> None:
        key = normalize_email_key(email)
        try:
            await self._update(user_id, email=email, email_key=key, email_verified=verified)
        except sa_exc.IntegrityError:
            raise EmailTaken() from None

    async def slowest_legacy_hashes(self) -> builtins.list[str]:
        # Plain SQL both SQLite and PostgreSQL run: a bcrypt cost is always two
        # digits, so it orders as text; PBKDF2 iterations are ordered as text
        # among counts with the same number of digits, most digits first.
        column = users.c.password_hash
        found: builtins.list[str] = []
        async with connect(self._engine) as connection:

            async def top(pattern: str, key: sa.ColumnElement[str]) -> None:
                query = (
                    sa.select(column)
                    .where(column.like(pattern, escape="\\"))
                    .order_by(key.desc())
                    .limit(1)
                )
                stored = (await connection.execute(query)).scalar()
                if stored is not None:
                    found.append(stored)

            legacy = sa.select(column).where(~column.like("$argon2%")).limit(1)
            if (await connection.execute(legacy)).first() is None:
                return found
            for prefix, position in _BCRYPT_PREFIXES:
                pattern = _like_prefix(prefix) + "_$__$%"
                await top(pattern, sa.func.substr(column, position, 2))
            for prefix in _PBKDF2_PREFIXES:
                before = len(found)
                for digits in range(_MAX_ITERATION_DIGITS, 0, -1):
                    pattern = _like_prefix(prefix) + "_" * digits + "$%"
                    await top(pattern, sa.func.substr(column, len(prefix) + 1, digits))
                    if len(found) > before:
                        break
        return found

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
