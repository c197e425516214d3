"""The revocation log in the ``revocations`` table (append-only, swept at expiry)."""

from __future__ import annotations

import math

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from keyturn.stores.records import Revocation, RevocationKind
from keyturn.stores.sql.engine import connect
from keyturn.stores.sql.schema import revocations


def _from_row(row: sa.RowMapping) -> Revocation:
    kind: RevocationKind = row["kind"]
    return Revocation(
        kind=kind,
        value=row["value"],
        created_at=float(row["created_at"]),
        expires_at=float(row["expires_at"]),
        seq=int(row["seq"]),
    )


class SqlRevocationStore:
    """Entries numbered by an auto-increment ``seq``; indexed by ``created_at``
    (the overlap window of incremental sync) and ``expires_at`` (the sweep)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, entry: Revocation) -> Revocation:
        statement = (
            revocations.insert()
            .values(
                kind=entry.kind,
                value=entry.value,
                created_at=entry.created_at,
                expires_at=entry.expires_at,
            )
            .returning(revocations.c.seq)
        )
        async with connect(self._engine, write=True) as connection:
            seq = (await connection.execute(statement)).scalar_one()
        return Revocation(entry.kind, entry.value, entry.created_at, entry.expires_at, int(seq))

    async def changes(self, *, after_seq: int, since: float, now: float) -> list[Revocation]:
        newer: sa.ColumnElement[bool] = revocations.c.seq > after_seq
        if not math.isinf(since):
            newer = sa.or_(newer, revocations.c.created_at >= since)
        query = (
            sa.select(revocations)
            .where(newer, revocations.c.expires_at > now)
            .order_by(revocations.c.seq)
        )
        async with connect(self._engine) as connection:
            result = await connection.execute(query)
            return [_from_row(row) for row in result.mappings()]

    async def sweep(self, now: float) -> int:
        statement = revocations.delete().where(revocations.c.expires_at <= now)
        async with connect(self._engine, write=True) as connection:
            result = await connection.execute(statement)
        return int(result.rowcount)
