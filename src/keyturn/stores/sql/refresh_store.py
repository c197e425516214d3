"""Refresh families and tokens in ``refresh_families`` and ``refresh_tokens``.

Rotation is one conditional ``UPDATE ... WHERE token_hash = ? AND used_at IS NULL
AND <family not revoked>`` followed by the successor's ``INSERT`` in the same
transaction (:mod:`keyturn.stores.sql.refresh_sql`, one statement on
PostgreSQL). On PostgreSQL a concurrent second ``UPDATE`` waits for the first
transaction's row lock and then re-checks its ``WHERE`` against the committed
row, so it matches nothing; SQLite serializes writers outright. Either way,
exactly one caller rotates a token, on any number of instances.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keyturn.errors import UserNotFound
from keyturn.stores.records import RefreshFamily, RefreshToken
from keyturn.stores.sql.direct import PostgresDirect, SqliteDirect
from keyturn.stores.sql.engine import connect
from keyturn.stores.sql.refresh_sql import read_token, rotate_token
from keyturn.stores.sql.schema import refresh_families, refresh_tokens, users

_families = refresh_families
_tokens = refresh_tokens


def _family_from_row(row: sa.RowMapping) -> RefreshFamily:
    return RefreshFamily(
        id=row["id"],
        user_id=row["user_id"],
        client_id=row["client_id"],
        scope=row["scope"],
        created_at=float(row["created_at"]),
        last_used_at=float(row["last_used_at"]),
        expires_at=float(row["expires_at"]),
        ip=row["ip"],
        user_agent=row["user_agent"],
        revoked_at=None if row["revoked_at"] is None else float(row["revoked_at"]),
        session_id=row["session_id"],
        dpop_jkt=row["dpop_jkt"],
    )


def _family_values(family: RefreshFamily) -> dict[str, Any]:
    return {
        "id": family.id,
        "user_id": family.user_id,
        "client_id": family.client_id,
        "scope": family.scope,
        "created_at": family.created_at,
        "last_used_at": family.last_used_at,
        "expires_at": family.expires_at,
        "ip": family.ip,
        "user_agent": family.user_agent,
        "revoked_at": family.revoked_at,
        "session_id": family.session_id,
        "dpop_jkt": family.dpop_jkt,
    }


def _token_values(token: RefreshToken) -> dict[str, Any]:
    return {
        "token_hash": token.token_hash,
        "family_id": token.family_id,
        "issued_at": token.issued_at,
        "expires_at": token.expires_at,
        "used_at": token.used_at,
        "grace_until": token.grace_until,
        "grace_payload": token.grace_payload,
    }


_AGE_ORDER = (_families.c.created_at, _families.c.id)


class SqlRefreshStore:
    """Families keyed by ``id`` (deleted with their user), tokens keyed by
    ``token_hash`` (deleted with their family).

    The refresh grant's two calls, :meth:`get_token` and :meth:`rotate`, run as
    plain SQL on ``direct`` (:mod:`keyturn.stores.sql.refresh_sql`); the rest
    through SQLAlchemy Core.
    """

    def __init__(self, engine: AsyncEngine, direct: SqliteDirect | PostgresDirect) -> None:
        self._engine = engine
        self._direct = direct  # the refresh grant's read and rotation (refresh_sql)

    async def create_family(
        self,
        family: RefreshFamily,
        token: RefreshToken,
        *,
        max_per_user: int | None = None,
        idle_timeout: float | None = None,
    ) -> list[RefreshFamily]:
        try:
            async with connect(self._engine, write=True) as connection:
                # Insert first: on SQLite that takes the write lock before any read.
                await connection.execute(_families.insert().values(**_family_values(family)))
                await connection.execute(_tokens.insert().values(**_token_values(token)))
                if max_per_user is None:
                    return []
                return await _enforce_cap(connection, family, max_per_user, idle_timeout)
        except sa_exc.IntegrityError:
            if not await self._user_exists(family.user_id):
                raise UserNotFound() from None
            raise

    async def get_token(self, token_hash: str) -> tuple[RefreshToken, RefreshFamily] | None:
        return await read_token(self._direct, token_hash)

    async def rotate(
        self,
        token_hash: str,
        successor: RefreshToken,
        *,
        now: float,
        grace_until: float | None,
        grace_payload: bytes | None,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> bool:
        return await rotate_token(
            self._direct,
            token_hash,
            successor,
            now=now,
            grace_until=grace_until,
            grace_payload=grace_payload,
            ip=ip,
            user_agent=user_agent,
        )

    async def clear_grace(self, token_hash: str) -> None:
        statement = (
            _tokens.update()
            .where(_tokens.c.token_hash == token_hash, _tokens.c.grace_payload.is_not(None))
            .values(grace_payload=None)
        )
        async with connect(self._engine, write=True) as connection:
            await connection.execute(statement)

    async def get_family(self, family_id: str) -> RefreshFamily | None:
        query = sa.select(_families).where(_families.c.id == family_id)
        async with connect(self._engine) as connection:
            row = (await connection.execute(query)).mappings().first()
        return _family_from_row(row) if row is not None else None

    async def list_families(self, user_id: str) -> list[RefreshFamily]:
        query = sa.select(_families).where(_families.c.user_id == user_id).order_by(*_AGE_ORDER)
        async with connect(self._engine) as connection:
            result = await connection.execute(query)
            return [_family_from_row(row) for row in result.mappings()]

    async def revoke_family(self, family_id: str, now: float) -> RefreshFamily | None:
        revoked = await self._revoke(_families.c.id == family_id, now)
        if revoked:
            return revoked[0]
        return await self.get_family(family_id)

    async def revoke_for_user(self, user_id: str, now: float) -> list[RefreshFamily]:
        return await self._revoke(_families.c.user_id == user_id, now)

    async def revoke_for_sessions(self, session_ids: list[str], now: float) -> list[RefreshFamily]:
        if not session_ids:
            return []
        return await self._revoke(_families.c.session_id.in_(session_ids), now)

    async def _revoke(self, condition: sa.ColumnElement[bool], now: float) -> list[RefreshFamily]:
        async with connect(self._engine, write=True) as connection:
            return await _revoke_in(connection, condition, now)

    async def sweep(self, now: float) -> int:
        async with connect(self._engine, write=True) as connection:
            expired = sa.select(_families.c.id).where(_families.c.expires_at <= now)
            tokens = await connection.execute(
                _tokens.delete().where(
                    sa.or_(_tokens.c.expires_at <= now, _tokens.c.family_id.in_(expired))
                )
            )
            families = await connection.execute(
                _families.delete().where(_families.c.expires_at <= now)
            )
            await connection.execute(
                _tokens.update()
                .where(_tokens.c.grace_payload.is_not(None), _tokens.c.grace_until <= now)
                .values(grace_payload=None)
            )
        return int(tokens.rowcount) + int(families.rowcount)

    async def _user_exists(self, user_id: str) -> bool:
        query = sa.select(users.c.id).where(users.c.id == user_id)
        async with connect(self._engine) as connection:
            return (await connection.execute(query)).first() is not None


async def _enforce_cap(
    connection: AsyncConnection,
    family: RefreshFamily,
    max_per_user: int,
    idle_timeout: float | None,
) -> list[RefreshFamily]:
    """Revoke the user's oldest live families beyond ``max_per_user``, in the
    transaction that just inserted ``family``."""
    # PostgreSQL: concurrent sign-ins of one user queue on the user's row here
    # (NO KEY UPDATE does not conflict with the KEY SHARE the inserts took),
    # so each counts the families the previous one committed. SQLite already
    # holds the database's write lock.
    owner = sa.select(users.c.id).where(users.c.id == family.user_id)
    await connection.execute(owner.with_for_update(key_share=True))  # FOR NO KEY UPDATE
    now = family.created_at
    live = [
        _families.c.user_id == family.user_id,
        _families.c.id != family.id,
        _families.c.revoked_at.is_(None),
        _families.c.expires_at > now,
    ]
    if idle_timeout is not None:
        live.append(_families.c.last_used_at > now - idle_timeout)
    query = sa.select(_families.c.id).where(*live).order_by(*_AGE_ORDER)
    others = list((await connection.execute(query)).scalars())
    doomed = others[: max(len(others) + 1 - max_per_user, 0)]
    if not doomed:
        return []
    return await _revoke_in(connection, _families.c.id.in_(doomed), now)


async def _revoke_in(
    connection: AsyncConnection, condition: sa.ColumnElement[bool], now: float
) -> list[RefreshFamily]:
    """Revoke the unrevoked families matching ``condition`` and wipe the kept
    responses of all their tokens; the revoked families, oldest first."""
    statement = (
        _families.update()
        .where(condition, _families.c.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(*_families.c)
    )
    result = await connection.execute(statement)
    revoked = [_family_from_row(row) for row in result.mappings()]
    doomed = sa.select(_families.c.id).where(condition)
    await connection.execute(
        _tokens.update()
        .where(_tokens.c.family_id.in_(doomed), _tokens.c.grace_payload.is_not(None))
        .values(grace_payload=None)
    )
    return sorted(revoked, key=lambda family: (family.created_at, family.id))
