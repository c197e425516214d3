"""The OutboxStore contract, run against the memory reference, SQLite, PostgreSQL
(and the SQL + Redis bundle, whose outbox is the SQL one)."""

from __future__ import annotations

import asyncio

from tests.contracts.wave2_support import T0, stored_bytes

from keyturn.outbox import AesGcmSealer, JobState
from keyturn.outbox.store import MAX_ERROR_LENGTH
from keyturn.stores.protocols import Storage
from keyturn.stores.sql import SqlStorage, create_engine_for
from keyturn.stores.sql.outbox_store import SqlOutboxStore
from keyturn.stores.wave2 import Wave2Stores

MAIL = frozenset({"mail"})


async def test_enqueue_get_round_trip(wave2: Wave2Stores) -> None:
    """A job comes back as enqueued: pending, no attempts, due at not_before."""
    job = await wave2.outbox.enqueue("mail", b"\x00sealed\xff", now=T0, not_before=T0 + 5)
    assert await wave2.outbox.get(job.id) == job
    assert (job.state, job.attempts, job.next_attempt_at) == (JobState.PENDING, 0, T0 + 5)
    assert (job.created_at, job.updated_at, job.lease_owner) == (T0, T0, None)
    assert await wave2.outbox.get("missing") is None


async def test_claim_leases_due_jobs_oldest_first(wave2: Wave2Stores) -> None:
    """A claim takes only due jobs of the asked kinds, oldest due first, up to the
    limit, counting an attempt and setting the lease."""
    late = await wave2.outbox.enqueue("mail", b"late", now=T0, not_before=T0 + 3)
    early = await wave2.outbox.enqueue("mail", b"early", now=T0, not_before=T0 + 1)
    await wave2.outbox.enqueue("mail", b"future", now=T0, not_before=T0 + 100)
    await wave2.outbox.enqueue("logout", b"other kind", now=T0)
    claimed = await wave2.outbox.claim(
        owner="a", kinds=MAIL, now=T0 + 10, lease_seconds=30, limit=5
    )
    assert [job.id for job in claimed] == [early.id, late.id]
    first = claimed[0]
    assert (first.attempts, first.lease_owner, first.lease_expiry) == (1, "a", T0 + 40)
    assert await wave2.outbox.get(early.id) == first
    assert (
        await wave2.outbox.claim(owner="b", kinds=MAIL, now=T0 + 10, lease_seconds=30, limit=0)
        == []
    )


async def test_concurrent_claims_never_share_a_job(wave2: Wave2Stores) -> None:
    """Racing dispatchers split the due jobs: each job is leased exactly once."""
    ids = {(await wave2.outbox.enqueue("mail", b"p", now=T0)).id for _ in range(12)}
    batches = await asyncio.gather(
        *(
            wave2.outbox.claim(owner=f"w{n}", kinds=MAIL, now=T0, lease_seconds=60, limit=3)
            for n in range(8)
        )
    )
    claimed = [job.id for batch in batches for job in batch]
    assert len(claimed) == len(set(claimed))  # no job leased twice
    # A racer may skip rows another one holds; whatever is left is still due.
    rest = await wave2.outbox.claim(owner="last", kinds=MAIL, now=T0, lease_seconds=60, limit=99)
    assert sorted(claimed + [job.id for job in rest]) == sorted(ids)
    for batch in batches:
        for job in batch:
            stored = await wave2.outbox.get(job.id)
            assert stored is not None and stored.lease_owner == job.lease_owner


async def test_a_live_lease_excludes_other_claims_until_it_expires(wave2: Wave2Stores) -> None:
    """A leased job is invisible to other claims until its lease expires; then the
    next owner takes it (a second attempt) and the old owner can change nothing."""
    job = await wave2.outbox.enqueue("mail", b"p", now=T0)
    [held] = await wave2.outbox.claim(owner="a", kinds=MAIL, now=T0, lease_seconds=30, limit=5)
    assert (
        await wave2.outbox.claim(owner="b", kinds=MAIL, now=T0 + 29, lease_seconds=30, limit=5)
        == []
    )
    [taken] = await wave2.outbox.claim(
        owner="b", kinds=MAIL, now=T0 + 30, lease_seconds=30, limit=5
    )
    assert (taken.id, taken.attempts, taken.lease_owner) == (job.id, 2, "b")
    assert not await wave2.outbox.complete(job.id, owner="a", now=T0 + 31)
    assert not await wave2.outbox.fail(
        job.id, owner="a", now=T0 + 31, error="x", next_attempt_at=T0
    )
    assert not await wave2.outbox.mark_dead(job.id, owner="a", now=T0 + 31, error="x")
    assert not await wave2.outbox.release(job.id, owner="a", now=T0 + 31)
    assert held.lease_owner == "a"
    assert await wave2.outbox.complete(job.id, owner="b", now=T0 + 31)


async def test_an_expired_lease_cannot_settle(wave2: Wave2Stores) -> None:
    """Once its lease ran out, even the holder cannot mark the job sent."""
    job = await wave2.outbox.enqueue("mail", b"p", now=T0)
    await wave2.outbox.claim(owner="a", kinds=MAIL, now=T0, lease_seconds=10, limit=1)
    assert not await wave2.outbox.complete(job.id, owner="a", now=T0 + 10)
    stored = await wave2.outbox.get(job.id)
    assert stored is not None and stored.state is JobState.PENDING


async def test_complete_fail_dead_and_release(wave2: Wave2Stores) -> None:
    """Each way an attempt ends drops the lease and records its outcome."""
    sent, failed, dead, released = [
        await wave2.outbox.enqueue("mail", b"p", now=T0) for _ in range(4)
    ]
    await wave2.outbox.claim(owner="a", kinds=MAIL, now=T0, lease_seconds=60, limit=4)
    assert await wave2.outbox.complete(sent.id, owner="a", now=T0 + 1)
    assert await wave2.outbox.fail(
        failed.id, owner="a", now=T0 + 1, error="e" * 500, next_attempt_at=T0 + 90
    )
    assert await wave2.outbox.mark_dead(dead.id, owner="a", now=T0 + 1, error="gone")
    assert await wave2.outbox.release(released.id, owner="a", now=T0 + 1)
    got = {job.id: await wave2.outbox.get(job.id) for job in (sent, failed, dead, released)}
    for job in got.values():
        assert job is not None and job.lease_owner is None and job.lease_expiry is None
        assert job.updated_at == T0 + 1 and job.attempts == 1
    assert got[sent.id].state is JobState.SENT  # type: ignore[union-attr]
    retry = got[failed.id]
    assert retry is not None and retry.state is JobState.PENDING
    assert (retry.next_attempt_at, retry.last_error) == (T0 + 90, "e" * MAX_ERROR_LENGTH)
    assert got[dead.id].state is JobState.DEAD  # type: ignore[union-attr]
    assert got[dead.id].last_error == "gone"  # type: ignore[union-attr]
    assert got[released.id].next_attempt_at == T0 + 1  # type: ignore[union-attr]
    assert not await wave2.outbox.complete(sent.id, owner="a", now=T0 + 2)  # settled: no lease
    again = await wave2.outbox.claim(owner="b", kinds=MAIL, now=T0 + 2, lease_seconds=60, limit=9)
    assert [job.id for job in again] == [released.id]


async def test_purge_deletes_old_sent_and_dead_jobs_only(wave2: Wave2Stores) -> None:
    """Purge removes sent and dead jobs past their retention and keeps pending ones."""
    old_sent, new_sent, old_dead, pending = [
        await wave2.outbox.enqueue("mail", b"p", now=T0) for _ in range(4)
    ]
    await wave2.outbox.claim(owner="a", kinds=MAIL, now=T0, lease_seconds=600, limit=3)
    await wave2.outbox.complete(old_sent.id, owner="a", now=T0 + 1)
    await wave2.outbox.complete(new_sent.id, owner="a", now=T0 + 50)
    await wave2.outbox.mark_dead(old_dead.id, owner="a", now=T0 + 1, error="x")
    assert await wave2.outbox.purge(sent_before=T0 + 10, dead_before=T0 + 10) == 2
    assert await wave2.outbox.get(old_sent.id) is None
    assert await wave2.outbox.get(old_dead.id) is None
    assert await wave2.outbox.get(new_sent.id) is not None
    assert await wave2.outbox.get(pending.id) is not None


async def test_payload_is_stored_sealed_only(storage: Storage, wave2: Wave2Stores) -> None:
    """A sealed payload is stored as the caller sealed it: the reset link inside is
    nowhere in the store, and it opens back to the plaintext."""
    sealer = AesGcmSealer(bytes(range(32)))
    secret = b"https://id.example/reset?token=s3cr3t-r3set-t0ken"
    job = await wave2.outbox.enqueue("mail", sealer.seal(secret), now=T0)
    held = await stored_bytes(storage)
    assert secret not in held and b"s3cr3t-r3set-t0ken" not in held
    assert job.payload in held
    stored = await wave2.outbox.get(job.id)
    assert stored is not None and sealer.open(stored.payload) == secret


async def test_two_instances_on_one_database_never_share_a_job(sql_storage: SqlStorage) -> None:
    """Two keyturn instances (two engines, two pools) claiming from one database
    at once lease each due job to exactly one of them."""
    url = sql_storage.engine.url.render_as_string(hide_password=False)
    other = create_engine_for(url)
    try:
        first, second = SqlOutboxStore(sql_storage.engine), SqlOutboxStore(other)
        ids = {(await first.enqueue("mail", b"p", now=T0)).id for _ in range(20)}
        batches = await asyncio.gather(
            *(
                store.claim(owner=f"{name}{n}", kinds=MAIL, now=T0, lease_seconds=60, limit=2)
                for n in range(6)
                for name, store in (("a", first), ("b", second))
            )
        )
        claimed = [job.id for batch in batches for job in batch]
        assert len(claimed) == len(set(claimed))  # no job leased twice
        rest = await second.claim(owner="last", kinds=MAIL, now=T0, lease_seconds=60, limit=99)
        assert sorted(claimed + [job.id for job in rest]) == sorted(ids)
    finally:
        await other.dispose()
