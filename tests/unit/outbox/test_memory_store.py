"""The memory outbox store: due order, leases, ownership and purge."""

from __future__ import annotations

import pytest

from keyturn.outbox import JobState, MemoryOutboxStore

MAIL = frozenset({"mail"})


async def test_claim_takes_due_jobs_oldest_first_up_to_the_limit() -> None:
    """Only due jobs are claimed, earliest due first, and no more than asked."""
    store = MemoryOutboxStore()
    late = await store.enqueue("mail", b"late", now=100, not_before=200)
    second = await store.enqueue("mail", b"2", now=101)
    first = await store.enqueue("mail", b"1", now=100)
    claimed = await store.claim(owner="a", kinds=MAIL, now=150, lease_seconds=60, limit=5)
    assert [job.id for job in claimed] == [first.id, second.id]
    assert all(job.attempts == 1 and job.lease_expiry == 210 for job in claimed)
    assert await store.claim(owner="b", kinds=MAIL, now=150, lease_seconds=60, limit=5) == []
    [job] = await store.claim(owner="b", kinds=MAIL, now=200, lease_seconds=60, limit=1)
    assert job.id == late.id


async def test_only_the_lease_holder_can_settle_a_job() -> None:
    """complete/fail/dead/release by another owner or after the lease expired do nothing."""
    store = MemoryOutboxStore()
    job = await store.enqueue("mail", b"x", now=0)
    await store.claim(owner="a", kinds=MAIL, now=0, lease_seconds=60, limit=1)
    assert not await store.complete(job.id, owner="b", now=1)
    assert not await store.fail(job.id, owner="b", now=1, error="e", next_attempt_at=9)
    assert not await store.mark_dead(job.id, owner="b", now=1, error="e")
    assert not await store.release(job.id, owner="b", now=1)
    assert not await store.complete(job.id, owner="a", now=60), "lease already expired"
    stored = await store.get(job.id)
    assert stored is not None and stored.state is JobState.PENDING


async def test_fail_truncates_the_error_and_reschedules() -> None:
    """last_error is kept short; the job is due again at next_attempt_at."""
    store = MemoryOutboxStore()
    job = await store.enqueue("mail", b"x", now=0)
    await store.claim(owner="a", kinds=MAIL, now=0, lease_seconds=60, limit=1)
    assert await store.fail(job.id, owner="a", now=1, error="e" * 500, next_attempt_at=30)
    stored = await store.get(job.id)
    assert stored is not None
    assert stored.last_error == "e" * 200 and stored.next_attempt_at == 30
    assert stored.lease_owner is None


async def test_purge_deletes_old_sent_and_dead_jobs_only() -> None:
    """Purge keeps pending jobs and recent outcomes."""
    store = MemoryOutboxStore()
    sent, dead, pending = [await store.enqueue("mail", b"x", now=0) for _ in range(3)]
    await store.claim(owner="a", kinds=MAIL, now=0, lease_seconds=60, limit=2)
    await store.complete(sent.id, owner="a", now=10)
    await store.mark_dead(dead.id, owner="a", now=10, error="e")
    assert await store.purge(sent_before=10, dead_before=10) == 0
    assert await store.purge(sent_before=11, dead_before=5) == 1
    assert await store.get(sent.id) is None and await store.get(dead.id) is not None
    assert await store.purge(sent_before=11, dead_before=11) == 1
    assert await store.get(pending.id) is not None


def test_repr_hides_the_payload() -> None:
    """A job's repr shows its size, never its (sealed) bytes."""
    from keyturn.outbox import OutboxJob

    job = OutboxJob("i", "mail", b"secret-bytes", JobState.PENDING, 0, 0.0, 0.0, 0.0)
    assert "secret-bytes" not in repr(job) and "12 bytes" in repr(job)


@pytest.mark.parametrize(
    "tamper", [lambda b: b[:-1] + bytes([b[-1] ^ 1]), lambda b: b"\x02" + b[1:]]
)
def test_sealer_round_trips_and_rejects_tampering(tamper: object) -> None:
    """A sealed payload opens with its key and context only, and not once altered."""
    from cryptography.exceptions import InvalidTag

    from keyturn.outbox import AesGcmSealer

    sealer = AesGcmSealer(b"k" * 32)
    sealed = sealer.seal(b"link with token")
    assert b"token" not in sealed and sealer.open(sealed) == b"link with token"
    with pytest.raises((InvalidTag, ValueError)):
        sealer.open(tamper(sealed))  # type: ignore[operator]
    with pytest.raises(InvalidTag):
        AesGcmSealer(b"k" * 32, context=b"other").open(sealed)
