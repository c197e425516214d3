"""The ID-token recipients of :mod:`keyturn.oidc.store` on SQL.

``take_for_sessions`` is ``DELETE ... WHERE session_handle IN (...) RETURNING *``:
on PostgreSQL a concurrent second delete waits for the first's row locks and
then matches nothing, SQLite runs one writer at a time, so each entry is
returned to one caller only.
"""

from __future__ import annotations

from collections.abc import Sequence

from keyturn.oidc.store import IdTokenSession
from keyturn.stores.sql.dialects import SqlStore, insert_for
from keyturn.stores.sql.engine import connect
from keyturn.stores.sql.schema import oidc_id_token_sessions as table

__all__ = ["SqlIdTokenSessionStore"]


class SqlIdTokenSessionStore(SqlStore):
    """:class:`keyturn.oidc.store.IdTokenSessionStore` on SQLite or PostgreSQL."""

    async def record(self, entry: IdTokenSession) -> None:
        """See :meth:`keyturn.oidc.store.IdTokenSessionStore.record`."""
        statement = (
            insert_for(self._engine, table)
            .values(
                session_handle=entry.session_handle,
                client_id=entry.client_id,
                user_id=entry.user_id,
                created_at=entry.created_at,
            )
            .on_conflict_do_nothing(index_elements=["session_handle", "client_id"])
        )
        async with connect(self._engine, write=True) as connection:
            await connection.execute(statement)

    async def take_for_sessions(self, handles: Sequence[str]) -> list[IdTokenSession]:
        """See :meth:`keyturn.oidc.store.IdTokenSessionStore.take_for_sessions`."""
        if not handles:
            return []
        statement = (
            table.delete().where(table.c.session_handle.in_(list(handles))).returning(*table.c)
        )
        async with connect(self._engine, write=True) as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return [
            IdTokenSession(
                session_handle=row["session_handle"],
                client_id=row["client_id"],
                user_id=row["user_id"],
                created_at=float(row["created_at"]),
            )
            for row in rows
        ]

    async def purge(self, created_before: float) -> int:
        """See :meth:`keyturn.oidc.store.IdTokenSessionStore.purge`."""
        async with connect(self._engine, write=True) as connection:
            result = await connection.execute(
                table.delete().where(table.c.created_at < created_before)
            )
        return int(result.rowcount)
