"""The outbox queue in ``outbox_jobs``: :class:`~keyturn.outbox.store.OutboxStore` on SQL.

A claim is one ``UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING``, so
choosing and leasing jobs cannot be split by another instance. On PostgreSQL the
inner select is ``FOR UPDATE SKIP LOCKED``: concurrent claimers take disjoint
rows instead of waiting on each other, and the outer ``WHERE`` repeats the due
conditions, which PostgreSQL re-checks on the newest row version, so a job
leased by a transaction that committed meanwhile is never leased twice. SQLite
has one writer at a time, so the same statement runs alone. Every change to a
leased job is a compare-and-set on ``(lease_owner, lease_expiry > now)``: a
dispatcher whose lease ran out changes nothing (``False``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from keyturn.outbox.store import MAX_ERROR_LENGTH, JobState, OutboxJob
from keyturn.stores.sql.dialects import is_postgres, optional_float
from keyturn.stores.sql.engine import connect
from keyturn.stores.sql.schema import outbox_jobs

__all__ = ["SqlOutboxStore"]

_jobs = outbox_jobs


def _job_from_row(row: sa.RowMapping) -> OutboxJob:
    return OutboxJob(
        id=row["id"],
        kind=row["kind"],
        payload=bytes(row["payload"]),
        state=JobState(row["state"]),
        attempts=int(row["attempts"]),
        next_attempt_at=float(row["next_attempt_at"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        lease_owner=row["lease_owner"],
        lease_expiry=optional_float(row["lease_expiry"]),
        last_error=row["last_error"],
    )


def _due(kinds: frozenset[str], now: float) -> list[sa.ColumnElement[bool]]:
    """Pending, of one of ``kinds``, due, and not under a live lease."""
    return [
        _jobs.c.state == JobState.PENDING.value,
        _jobs.c.kind.in_(sorted(kinds)),
        _jobs.c.next_attempt_at <= now,
        sa.or_(_jobs.c.lease_expiry.is_(None), _jobs.c.lease_expiry <= now),
    ]


class SqlOutboxStore:
    """Outbox jobs in one table; see :class:`keyturn.outbox.store.OutboxStore`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return "SqlOutboxStore()"

    async def enqueue(
        self, kind: str, payload: bytes, *, now: float, not_before: float | None = None
    ) -> OutboxJob:
        job = OutboxJob.new(kind, payload, now=now, not_before=not_before)
        values = {
            "id": job.id,
            "kind": job.kind,
            "payload": job.payload,
            "state": job.state.value,
            "attempts": 0,
            "next_attempt_at": job.next_attempt_at,
            "created_at": now,
            "updated_at": now,
        }
        async with connect(self._engine, write=True) as connection:
            await connection.execute(_jobs.insert().values(**values))
        return job

    async def claim(
        self,
        *,
        owner: str,
        kinds: frozenset[str],
        now: float,
        lease_seconds: float,
        limit: int,
    ) -> list[OutboxJob]:
        if limit <= 0 or not kinds:
            return []
        due = _due(kinds, now)
        chosen = (
            sa.select(_jobs.c.id)
            .where(*due)
            .order_by(_jobs.c.next_attempt_at, _jobs.c.created_at)
            .limit(limit)
        )
        if is_postgres(self._engine):
            chosen = chosen.with_for_update(skip_locked=True)
        statement = (
            _jobs.update()
            .where(_jobs.c.id.in_(chosen.scalar_subquery()), *due)
            .values(
                attempts=_jobs.c.attempts + 1,
                lease_owner=owner,
                lease_expiry=now + lease_seconds,
                updated_at=now,
            )
            .returning(*_jobs.c)
        )
        async with connect(self._engine, write=True) as connection:
            rows = (await connection.execute(statement)).mappings().all()
        claimed = [_job_from_row(row) for row in rows]
        return sorted(claimed, key=lambda job: (job.next_attempt_at, job.created_at))

    async def _settle(self, job_id: str, owner: str, now: float, **changes: Any) -> bool:
        """Apply ``changes`` and drop the lease if ``owner`` still holds a live one."""
        statement = (
            _jobs.update()
            .where(
                _jobs.c.id == job_id,
                _jobs.c.state == JobState.PENDING.value,
                _jobs.c.lease_owner == owner,
                _jobs.c.lease_expiry > now,
            )
            .values(lease_owner=None, lease_expiry=None, updated_at=now, **changes)
        )
        async with connect(self._engine, write=True) as connection:
            result = await connection.execute(statement)
        return result.rowcount == 1

    async def complete(self, job_id: str, *, owner: str, now: float) -> bool:
        return await self._settle(job_id, owner, now, state=JobState.SENT.value, last_error=None)

    async def fail(
        self, job_id: str, *, owner: str, now: float, error: str, next_attempt_at: float
    ) -> bool:
        return await self._settle(
            job_id,
            owner,
            now,
            next_attempt_at=next_attempt_at,
            last_error=error[:MAX_ERROR_LENGTH],
        )

    async def mark_dead(self, job_id: str, *, owner: str, now: float, error: str) -> bool:
        return await self._settle(
            job_id, owner, now, state=JobState.DEAD.value, last_error=error[:MAX_ERROR_LENGTH]
        )

    async def release(self, job_id: str, *, owner: str, now: float) -> bool:
        return await self._settle(job_id, owner, now, next_attempt_at=now)

    async def get(self, job_id: str) -> OutboxJob | None:
        query = sa.select(_jobs).where(_jobs.c.id == job_id)
        async with connect(self._engine) as connection:
            row = (await connection.execute(query)).mappings().first()
        return None if row is None else _job_from_row(row)

    async def purge(self, *, sent_before: float, dead_before: float) -> int:
        statement = _jobs.delete().where(
            sa.or_(
                sa.and_(_jobs.c.state == JobState.SENT.value, _jobs.c.updated_at < sent_before),
                sa.and_(_jobs.c.state == JobState.DEAD.value, _jobs.c.updated_at < dead_before),
            )
        )
        async with connect(self._engine, write=True) as connection:
            result = await connection.execute(statement)
        return int(result.rowcount)
