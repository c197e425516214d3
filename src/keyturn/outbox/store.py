"""Outbox records and the one store Protocol every backend implements.

A job is a side effect (a mail, a back-channel logout) that a request decided on
but must not wait for. The record is all the store knows: ``payload`` is opaque,
already sealed by the caller's :class:`Sealer`, because a mail payload carries a
link with a secret in it. Leases make delivery safe across instances: a job is
handed to one dispatcher at a time, and comes back to the pool when its lease
expires (the holder crashed) or is released (the holder stopped).
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Protocol

__all__ = ["MAX_ERROR_LENGTH", "JobState", "OutboxJob", "OutboxStore", "Sealer"]

#: ``last_error`` is cut to this many characters: a hint for operators, not a log.
MAX_ERROR_LENGTH = 200


class JobState(enum.StrEnum):
    """Where a job is in its life: waiting (or leased), delivered, or given up."""

    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class OutboxJob:
    """One queued side effect.

    ``attempts`` counts claims (a claim is an attempt even if the holder dies
    mid-way, so a job that crashes its worker cannot loop forever).
    ``lease_owner``/``lease_expiry`` are set while a dispatcher holds the job;
    ``next_attempt_at`` is when it becomes due again. ``payload`` is sealed
    bytes and is left out of ``repr``.
    """

    id: str
    kind: str
    payload: bytes
    state: JobState
    attempts: int
    next_attempt_at: float
    created_at: float
    updated_at: float
    lease_owner: str | None = None
    lease_expiry: float | None = None
    last_error: str | None = None

    @classmethod
    def new(
        cls, kind: str, payload: bytes, *, now: float, not_before: float | None = None
    ) -> OutboxJob:
        """A fresh pending job with a random id, due at ``not_before`` (or ``now``):
        what every store's ``enqueue`` writes."""
        return cls(
            id=uuid.uuid4().hex,
            kind=kind,
            payload=bytes(payload),
            state=JobState.PENDING,
            attempts=0,
            next_attempt_at=now if not_before is None else not_before,
            created_at=now,
            updated_at=now,
        )

    def __repr__(self) -> str:
        return (
            f"OutboxJob(id={self.id!r}, kind={self.kind!r}, state={self.state.value!r}, "
            f"attempts={self.attempts}, next_attempt_at={self.next_attempt_at}, "
            f"lease_owner={self.lease_owner!r}, payload=<{len(self.payload)} bytes>)"
        )


class Sealer(Protocol):
    """Encrypts payloads at rest (integration wraps the key-encryption key).

    ``open`` raises if the bytes were not sealed by this key or were altered.
    """

    def seal(self, plaintext: bytes) -> bytes:
        """Return an authenticated ciphertext of ``plaintext``."""
        ...

    def open(self, sealed: bytes) -> bytes:
        """Return the plaintext of ``sealed``.

        Raises:
            Exception: the bytes are not authentic (any error: callers treat it
                as a permanent delivery failure).
        """
        ...


class OutboxStore(Protocol):
    """Durable job queue with leases. Every method is atomic per job.

    Methods that change a leased job take the ``owner`` that claimed it and do
    nothing (returning ``False``) when that owner no longer holds the lease, so a
    dispatcher whose lease expired cannot overwrite the work of the next one.
    """

    async def enqueue(
        self, kind: str, payload: bytes, *, now: float, not_before: float | None = None
    ) -> OutboxJob:
        """Store a new pending job, due at ``not_before`` (default: now)."""
        ...

    async def claim(
        self,
        *,
        owner: str,
        kinds: frozenset[str],
        now: float,
        lease_seconds: float,
        limit: int,
    ) -> list[OutboxJob]:
        """Lease up to ``limit`` due jobs of ``kinds`` to ``owner``, oldest due first.

        A job is due when it is pending, ``next_attempt_at <= now`` and it has no
        live lease (``lease_expiry`` unset or ``<= now``). Claiming increments
        ``attempts``. Two concurrent claims never return the same job.
        """
        ...

    async def complete(self, job_id: str, *, owner: str, now: float) -> bool:
        """Mark a leased job sent and drop its lease."""
        ...

    async def fail(
        self, job_id: str, *, owner: str, now: float, error: str, next_attempt_at: float
    ) -> bool:
        """Record a failed attempt and make the job due again at ``next_attempt_at``."""
        ...

    async def mark_dead(self, job_id: str, *, owner: str, now: float, error: str) -> bool:
        """Give up on a leased job: it is kept (state ``dead``) for operators."""
        ...

    async def release(self, job_id: str, *, owner: str, now: float) -> bool:
        """Give a leased job back unfinished (graceful stop); due again at once."""
        ...

    async def get(self, job_id: str) -> OutboxJob | None:
        """Return the job, or ``None`` when it does not exist (or was purged)."""
        ...

    async def purge(self, *, sent_before: float, dead_before: float) -> int:
        """Delete sent jobs last updated before ``sent_before`` and dead ones
        before ``dead_before``; return how many were deleted."""
        ...
