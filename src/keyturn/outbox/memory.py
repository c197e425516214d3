"""The in-memory outbox store: the reference implementation of :class:`OutboxStore`.

Jobs live in a dict inside one process, so they do not survive a restart: it is
for tests and the single-process embedded mode until the SQL store exists. No
method awaits while it reads and writes a job, so each call is atomic on the
event loop and two dispatchers sharing one store never claim the same job.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from keyturn.outbox.store import MAX_ERROR_LENGTH, JobState, OutboxJob

__all__ = ["MemoryOutboxStore"]


class MemoryOutboxStore:
    """Outbox jobs in a dict; see :class:`keyturn.outbox.store.OutboxStore`."""

    def __init__(self) -> None:
        self._jobs: dict[str, OutboxJob] = {}

    def __repr__(self) -> str:
        return f"MemoryOutboxStore(jobs={len(self._jobs)})"

    async def enqueue(
        self, kind: str, payload: bytes, *, now: float, not_before: float | None = None
    ) -> OutboxJob:
        job = OutboxJob.new(kind, payload, now=now, not_before=not_before)
        self._jobs[job.id] = job
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
        due = sorted(
            (
                job
                for job in self._jobs.values()
                if job.state is JobState.PENDING
                and job.kind in kinds
                and job.next_attempt_at <= now
                and (job.lease_expiry is None or job.lease_expiry <= now)
            ),
            key=lambda job: (job.next_attempt_at, job.created_at),
        )
        claimed = []
        for job in due[: max(0, limit)]:
            leased = dataclasses.replace(
                job,
                attempts=job.attempts + 1,
                lease_owner=owner,
                lease_expiry=now + lease_seconds,
                updated_at=now,
            )
            self._jobs[job.id] = leased
            claimed.append(leased)
        return claimed

    def _held(self, job_id: str, owner: str, now: float) -> OutboxJob | None:
        """The job if ``owner`` still holds a live lease on it."""
        job = self._jobs.get(job_id)
        if job is None or job.state is not JobState.PENDING or job.lease_owner != owner:
            return None
        if job.lease_expiry is None or job.lease_expiry <= now:
            return None
        return job

    def _settle(self, job: OutboxJob, **changes: Any) -> bool:
        """Apply ``changes`` and drop the lease: the end of one attempt."""
        self._jobs[job.id] = dataclasses.replace(
            job, lease_owner=None, lease_expiry=None, **changes
        )
        return True

    async def complete(self, job_id: str, *, owner: str, now: float) -> bool:
        job = self._held(job_id, owner, now)
        if job is None:
            return False
        return self._settle(job, state=JobState.SENT, updated_at=now, last_error=None)

    async def fail(
        self, job_id: str, *, owner: str, now: float, error: str, next_attempt_at: float
    ) -> bool:
        job = self._held(job_id, owner, now)
        if job is None:
            return False
        return self._settle(
            job,
            next_attempt_at=next_attempt_at,
            updated_at=now,
            last_error=error[:MAX_ERROR_LENGTH],
        )

    async def mark_dead(self, job_id: str, *, owner: str, now: float, error: str) -> bool:
        job = self._held(job_id, owner, now)
        if job is None:
            return False
        return self._settle(
            job, state=JobState.DEAD, updated_at=now, last_error=error[:MAX_ERROR_LENGTH]
        )

    async def release(self, job_id: str, *, owner: str, now: float) -> bool:
        job = self._held(job_id, owner, now)
        if job is None:
            return False
        return self._settle(job, next_attempt_at=now, updated_at=now)

    async def get(self, job_id: str) -> OutboxJob | None:
        return self._jobs.get(job_id)

    async def purge(self, *, sent_before: float, dead_before: float) -> int:
        doomed = [
            job.id
            for job in self._jobs.values()
            if (job.state is JobState.SENT and job.updated_at < sent_before)
            or (job.state is JobState.DEAD and job.updated_at < dead_before)
        ]
        for job_id in doomed:
            del self._jobs[job_id]
        return len(doomed)
