"""Browser sessions in the ``sessions`` table.

The per-user cap is enforced in the transaction that inserts: on PostgreSQL the
owning ``users`` row is locked (``FOR NO KEY UPDATE``, which does not conflict
with the key-share lock the foreign key takes), so two sign-ins of one user
cannot both slip under the cap; SQLite serializes writers by itself.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from keyturn.errors import UserNotFound
from keyturn.stores.records import Session
from keyturn.stores.sql.dialects import dump_strings, load_strings
from keyturn.stores.sql.engine import connect
from keyturn.stores.sql.schema import sessions, users

_AGE_ORDER = (sessions.c.created_at, sessions.c.id_hash)


def _session_from_row(row: sa.RowMapping) -> Session:
    return Session(
        id_hash=row["id_hash"],
        handle=row["handle"],
        user_id=row["user_id"],
        created_at=float(row["created_at"]),
        last_seen_at=float(row["last_seen_at"]),
        idle_timeout=int(row["idle_timeout"]),
        expires_at=float(row["expires_at"]),
        auth_time=float(row["auth_time"]),
        remember=bool(row["remember"]),
        ip=row["ip"],
        user_agent=row["user_agent"],
        amr=tuple(load_strings(row["amr"])),
    )


def _values(session: Session) -> dict[str, Any]:
    return {
        "id_hash": session.id_hash,
        "handle": session.handle,
        "user_id": session.user_id,
        "created_at": session.created_at,
        "last_seen_at": session.last_seen_at,
        "idle_timeout": session.idle_timeout,
        "expires_at": session.expires_at,
        "auth_time": session.auth_time,
        "remember": session.remember,
        "ip": session.ip,
        "user_agent": session.user_agent,
        "amr": dump_strings(session.amr),
    }


def _expired(now: float) -> sa.ColumnElement[bool]:
    """SQL for :meth:`Session.is_expired`."""
    return sa.or_(
        sessions.c.expires_at <= now,
        sessions.c.last_seen_at + sessions.c.idle_timeout <= now,
    )


class SqlSessionStore:
    """Sessions keyed by ``id_hash``; indexed by ``user_id``, ``handle`` and
    ``expires_at``; deleted with their user (``ON DELETE CASCADE``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, session: Session, *, max_per_user: int) -> list[Session]:
        try:
            async with connect(self._engine, write=True) as connection:
                # Insert first: on SQLite that takes the write lock before any read.
                await connection.execute(sessions.insert().values(**_values(session)))
                owner = sa.select(users.c.id).where(users.c.id == session.user_id)
                await connection.execute(owner.with_for_update(key_share=True))
                others = (
                    sa.select(sessions)
                    .where(
                        sessions.c.user_id == session.user_id,
                        sessions.c.id_hash != session.id_hash,
                        sa.not_(_expired(session.last_seen_at)),
                    )
                    .order_by(*_AGE_ORDER)
                )
                result = await connection.execute(others)
                live = [_session_from_row(row) for row in result.mappings()]
                evicted = live[: max(len(live) + 1 - max_per_user, 0)]
                if evicted:
                    doomed = [old.id_hash for old in evicted]
                    await connection.execute(
                        sessions.delete().where(sessions.c.id_hash.in_(doomed))
                    )
        except sa_exc.IntegrityError:
            if not await self._user_exists(session.user_id):
                raise UserNotFound() from None
            raise
        return evicted

    async def get(self, id_hash: str) -> Session | None:
        return await self._one(sessions.c.id_hash == id_hash)

    async def get_by_handle(self, handle: str) -> Session | None:
        return await self._one(sessions.c.handle == handle)

    async def touch(self, id_hash: str, last_seen_at: float) -> None:
        statement = (
            sessions.update()
            .where(sessions.c.id_hash == id_hash, sessions.c.last_seen_at < last_seen_at)
            .values(last_seen_at=last_seen_at)
        )
        async with connect(self._engine, write=True) as connection:
            await connection.execute(statement)

    async def delete(self, id_hash: str) -> Session | None:
        deleted = await self._delete(sessions.c.id_hash == id_hash)
        return deleted[0] if deleted else None

    async def delete_for_user(
        self, user_id: str, *, keep_id_hash: str | None = None
    ) -> list[Session]:
        condition = sessions.c.user_id == user_id
        if keep_id_hash is not None:
            condition = sa.and_(condition, sessions.c.id_hash != keep_id_hash)
        return await self._delete(condition)

    async def list_for_user(self, user_id: str) -> list[Session]:
        return await self._list(
            sa.select(sessions).where(sessions.c.user_id == user_id).order_by(*_AGE_ORDER)
        )

    async def list_all(self) -> list[Session]:
        return await self._list(sa.select(sessions).order_by(*_AGE_ORDER))

    async def _list(self, query: sa.Select[Any]) -> list[Session]:
        async with connect(self._engine) as connection:
            result = await connection.execute(query)
            return [_session_from_row(row) for row in result.mappings()]

    async def sweep(self, now: float) -> int:
        async with connect(self._engine, write=True) as connection:
            result = await connection.execute(sessions.delete().where(_expired(now)))
        return int(result.rowcount)

    async def _one(self, condition: sa.ColumnElement[bool]) -> Session | None:
        async with connect(self._engine) as connection:
            result = await connection.execute(sa.select(sessions).where(condition))
            row = result.mappings().first()
        return _session_from_row(row) if row is not None else None

    async def _delete(self, condition: sa.ColumnElement[bool]) -> list[Session]:
        statement = sessions.delete().where(condition).returning(*sessions.c)
        async with connect(self._engine, write=True) as connection:
            result = await connection.execute(statement)
            deleted = [_session_from_row(row) for row in result.mappings()]
        return sorted(deleted, key=lambda session: (session.created_at, session.id_hash))

    async def _user_exists(self, user_id: str) -> bool:
        query = sa.select(users.c.id).where(users.c.id == user_id)
        async with connect(self._engine) as connection:
            return (await connection.execute(query)).first() is not None
