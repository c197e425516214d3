"""Accounts in the ``users`` table."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from keyturn.errors import EmailTaken, UserNotFound
from keyturn.stores.base import User, normalize_email_key
from keyturn.stores.sql.engine import connect
from keyturn.stores.sql.schema import users


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
