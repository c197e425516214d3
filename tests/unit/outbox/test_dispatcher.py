"""The outbox dispatcher: retries, backoff, dead jobs, leases, restarts and stop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from keyturn.clock import FrozenClock
from keyturn.errors import ConfigurationError, PermanentDeliveryError, RetryableDeliveryError
from keyturn.outbox import Dispatcher, JobState, MemoryOutboxStore, OutboxJob, RetryPolicy

SECRET = b"https://id.example/password/reset?token=s3cr3t-t0ken-value"


def _dispatcher(
    store: MemoryOutboxStore, clock: FrozenClock, owner: str = "a", **kwargs: object
) -> Dispatcher:
    return Dispatcher(store, clock=clock, owner=owner, rand=lambda: 0.5, **kwargs)  # type: ignore[arg-type]


async def _job(store: MemoryOutboxStore, job_id: str) -> OutboxJob:
    job = await store.get(job_id)
    assert job is not None
    return job


async def test_retries_follow_exponential_backoff_capped() -> None:
    """Each failure reschedules the job base*2^(n-1) seconds later, never past the cap."""
    store, clock = MemoryOutboxStore(), FrozenClock()
    dispatcher = _dispatcher(store, clock)

    async def failing(job: OutboxJob) -> None:
        raise RetryableDeliveryError("smtp 451")

    dispatcher.register("mail", failing, RetryPolicy(max_attempts=10, base_delay=10, max_delay=60))
    job = await store.enqueue("mail", b"x", now=clock.now())
    for expected in (10, 20, 40, 60, 60):
        assert await dispatcher.run_once() == 1
        current = await _job(store, job.id)
        assert current.next_attempt_at == pytest.approx(clock.now() + expected)
        assert current.lease_owner is None
        clock.advance(expected - 1)
        assert await dispatcher.run_once() == 0, "retried before its backoff elapsed"
        clock.advance(1)
    assert (await _job(store, job.id)).attempts == 5


def test_jitter_spreads_delays_within_bounds_and_cap() -> None:
    """Jitter moves a delay by at most ±jitter and never past max_delay."""
    policy = RetryPolicy(base_delay=10, max_delay=100, jitter=0.2)
    assert policy.delay(1, 0.0) == pytest.approx(8.0)
    assert policy.delay(1, 0.5) == pytest.approx(10.0)
    assert policy.delay(1, 0.999999) == pytest.approx(12.0, rel=1e-4)
    assert policy.delay(10, 0.999999) == 100.0
    assert policy.delay(10_000, 0.5) == 100.0


async def test_job_is_dead_after_max_attempts() -> None:
    """After max_attempts failures the job is dead, keeps its last error, and is not retried."""
    store, clock = MemoryOutboxStore(), FrozenClock()
    dispatcher = _dispatcher(store, clock)

    async def failing(job: OutboxJob) -> None:
        raise RetryableDeliveryError("smtp 451")

    dispatcher.register("mail", failing, RetryPolicy(max_attempts=3, base_delay=1, max_delay=1))
    job = await store.enqueue("mail", b"x", now=clock.now())
    for _ in range(3):
        assert await dispatcher.run_once() == 1
        clock.advance(5)
    dead = await _job(store, job.id)
    assert dead.state is JobState.DEAD
    assert dead.attempts == 3
    assert dead.last_error == "delivery_retryable: smtp 451"
    clock.advance(10_000)
    assert await dispatcher.run_once() == 0


async def test_permanent_error_kills_the_job_at_once() -> None:
    """A permanent failure (e.g. SMTP 550) is not retried."""
    store, clock = MemoryOutboxStore(), FrozenClock()
    dispatcher = _dispatcher(store, clock)

    async def refused(job: OutboxJob) -> None:
        raise PermanentDeliveryError("smtp 550 recipient refused")

    dispatcher.register("mail", refused)
    job = await store.enqueue("mail", b"x", now=clock.now())
    await dispatcher.run_once()
    assert (await _job(store, job.id)).state is JobState.DEAD


async def test_unexpected_handler_exception_is_recorded_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler bug is a retryable failure named by type only; run_once still returns."""
    store, clock = MemoryOutboxStore(), FrozenClock()
    dispatcher = _dispatcher(store, clock)

    async def buggy(job: OutboxJob) -> None:
        raise KeyError(SECRET.decode())

    dispatcher.register("mail", buggy)
    job = await store.enqueue("mail", SECRET, now=clock.now())
    with caplog.at_level(logging.DEBUG, logger="keyturn.outbox"):
        assert await dispatcher.run_once() == 1
    current = await _job(store, job.id)
    assert current.state is JobState.PENDING
    assert current.last_error == "unexpected: KeyError"
    assert "s3cr3t" not in caplog.text


async def test_logs_name_the_job_but_never_the_payload(caplog: pytest.LogCaptureFixture) -> None:
    """Every attempt is logged with id and kind; the payload never appears."""
    store, clock = MemoryOutboxStore(), FrozenClock()
    dispatcher = _dispatcher(store, clock)
    calls = 0

    async def flaky(job: OutboxJob) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RetryableDeliveryError("smtp 421")

    dispatcher.register("mail", flaky)
    job = await store.enqueue("mail", SECRET, now=clock.now())
    with caplog.at_level(logging.DEBUG, logger="keyturn.outbox"):
        await dispatcher.run_once()
        clock.advance(3600)
        await dispatcher.run_once()
    assert (await _job(store, job.id)).state is JobState.SENT
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert all(job.id in message and "mail" in message for message in messages)
    assert "attempt 1/8 failed" in messages[0] and "delivered" in messages[1]
    assert "s3cr3t" not in caplog.text and "token=" not in caplog.text


async def test_two_dispatchers_on_one_store_never_deliver_a_job_twice() -> None:
    """Concurrent dispatchers split the jobs between them; each job goes out once."""
    store, clock = MemoryOutboxStore(), FrozenClock()
    delivered: dict[str, list[str]] = {}
    dispatchers = [_dispatcher(store, clock, owner=name, batch_size=3) for name in ("a", "b")]
    for dispatcher in dispatchers:

        async def handler(job: OutboxJob, owner: str = dispatcher.owner) -> None:
            for _ in range(3):  # yield so the other dispatcher runs mid-delivery
                await asyncio.sleep(0)
            delivered.setdefault(job.id, []).append(owner)

        dispatcher.register("mail", handler)
    jobs = [await store.enqueue("mail", b"x", now=clock.now()) for _ in range(20)]
    while sum(await asyncio.gather(*(d.run_once() for d in dispatchers))):
        pass
    assert sorted(delivered) == sorted(job.id for job in jobs)
    assert all(len(owners) == 1 for owners in delivered.values())
    assert {owner for owners in delivered.values() for owner in owners} == {"a", "b"}


async def test_job_of_a_crashed_instance_is_delivered_after_its_lease_expires() -> None:
    """A job leased by an instance that died goes out from another one after the lease."""
    store, clock = MemoryOutboxStore(), FrozenClock()
    job = await store.enqueue("mail", b"x", now=clock.now())
    [leased] = await store.claim(
        owner="crashed", kinds=frozenset({"mail"}), now=clock.now(), lease_seconds=120, limit=1
    )
    survivor = _dispatcher(store, clock, owner="survivor")
    delivered: list[str] = []

    async def handler(job: OutboxJob) -> None:
        delivered.append(job.id)

    survivor.register("mail", handler)
    assert await survivor.run_once() == 0, "took a job under a live lease"
    clock.advance(120)
    assert await survivor.run_once() == 1
    assert delivered == [job.id]
    after = await _job(store, job.id)
    assert after.state is JobState.SENT and after.attempts == 2
    assert not await store.complete(job.id, owner="crashed", now=clock.now())
    assert leased.lease_owner == "crashed"


async def test_only_registered_kinds_are_claimed() -> None:
    """A dispatcher leaves jobs of kinds it has no handler for to others."""
    store, clock = MemoryOutboxStore(), FrozenClock()
    dispatcher = _dispatcher(store, clock)

    async def handler(job: OutboxJob) -> None:
        return None

    dispatcher.register("mail", handler)
    other = await store.enqueue("backchannel_logout", b"x", now=clock.now())
    assert await dispatcher.run_once() == 0
    assert (await _job(store, other.id)).attempts == 0


async def test_handler_timeout_is_a_retryable_failure() -> None:
    """A handler that hangs is abandoned after handler_timeout and retried later."""
    store, clock = MemoryOutboxStore(), FrozenClock()
    dispatcher = _dispatcher(store, clock, handler_timeout=0.01)

    async def hangs(job: OutboxJob) -> None:
        await asyncio.Event().wait()

    dispatcher.register("mail", hangs)
    job = await store.enqueue("mail", b"x", now=clock.now())
    await dispatcher.run_once()
    current = await _job(store, job.id)
    assert current.state is JobState.PENDING
    assert current.last_error is not None and current.last_error.startswith("timeout")


async def test_wake_delivers_a_new_job_without_waiting_for_the_poll() -> None:
    """After enqueue, wake() makes the running loop deliver at once."""
    store, clock = MemoryOutboxStore(), FrozenClock()
    waits: list[float] = []
    waiting = asyncio.Event()

    async def waiter(event: asyncio.Event, seconds: float) -> None:
        waits.append(seconds)
        waiting.set()
        await event.wait()  # only a wake() moves this loop on: no poll ever elapses

    dispatcher = _dispatcher(store, clock, waiter=waiter, poll_interval=3600)
    delivered = asyncio.Event()

    async def handler(job: OutboxJob) -> None:
        delivered.set()

    dispatcher.register("mail", handler)
    dispatcher.start()
    await waiting.wait()
    await store.enqueue("mail", b"x", now=clock.now())
    dispatcher.wake()
    async with asyncio.timeout(5):
        await delivered.wait()
    await dispatcher.stop()
    assert waits[0] == 3600


async def test_stop_lets_in_flight_delivery_finish_within_grace() -> None:
    """A delivery running when stop() is called completes and is recorded as sent."""
    store, clock = MemoryOutboxStore(), FrozenClock()
    started, release = asyncio.Event(), asyncio.Event()

    async def waiter(event: asyncio.Event, seconds: float) -> None:
        await event.wait()

    dispatcher = _dispatcher(store, clock, waiter=waiter)

    async def handler(job: OutboxJob) -> None:
        started.set()
        await release.wait()

    dispatcher.register("mail", handler)
    job = await store.enqueue("mail", b"x", now=clock.now())
    dispatcher.start()
    await started.wait()
    stopping = asyncio.create_task(dispatcher.stop(grace=5))
    await asyncio.sleep(0)
    release.set()
    await stopping
    assert (await _job(store, job.id)).state is JobState.SENT


async def test_stop_past_grace_releases_the_lease_for_another_instance() -> None:
    """A delivery still hanging after the grace period is cancelled and its job released."""
    store, clock = MemoryOutboxStore(), FrozenClock()
    started = asyncio.Event()

    async def waiter(event: asyncio.Event, seconds: float) -> None:
        await event.wait()

    dispatcher = _dispatcher(store, clock, waiter=waiter)

    async def hangs(job: OutboxJob) -> None:
        started.set()
        await asyncio.Event().wait()

    dispatcher.register("mail", hangs)
    job = await store.enqueue("mail", b"x", now=clock.now())
    dispatcher.start()
    await started.wait()
    await dispatcher.stop(grace=0)
    released = await _job(store, job.id)
    assert released.state is JobState.PENDING
    assert released.lease_owner is None and released.next_attempt_at == clock.now()
    other = _dispatcher(store, clock, owner="b")
    done: list[str] = []

    async def handler(job: OutboxJob) -> None:
        done.append(job.id)

    other.register("mail", handler)
    assert await other.run_once() == 1 and done == [job.id]


async def test_loop_survives_a_store_outage(caplog: pytest.LogCaptureFixture) -> None:
    """A claim that fails (database down) is logged and retried at the next poll."""
    clock = FrozenClock()
    polls = 0

    class FlakyStore(MemoryOutboxStore):
        async def claim(self, **kwargs: object) -> list[OutboxJob]:  # type: ignore[override]
            nonlocal polls
            polls += 1
            if polls == 1:
                raise ConnectionRefusedError("db down")
            return await super().claim(**kwargs)  # type: ignore[arg-type]

    delivered = asyncio.Event()

    async def waiter(event: asyncio.Event, seconds: float) -> None:
        await asyncio.sleep(0)  # the poll "elapses" at once

    store = FlakyStore()
    dispatcher = Dispatcher(store, clock=clock, owner="a", waiter=waiter)

    async def handler(job: OutboxJob) -> None:
        delivered.set()

    dispatcher.register("mail", handler)
    await store.enqueue("mail", b"x", now=clock.now())
    with caplog.at_level(logging.WARNING, logger="keyturn.outbox"):
        dispatcher.start()
        async with asyncio.timeout(5):
            await delivered.wait()
        await dispatcher.stop()
    assert "claiming jobs failed: ConnectionRefusedError" in caplog.text


def test_handler_timeout_must_be_shorter_than_the_lease() -> None:
    """A handler that could outlive its lease would let two instances deliver one job."""
    with pytest.raises(ConfigurationError):
        Dispatcher(MemoryOutboxStore(), clock=FrozenClock(), lease_seconds=30, handler_timeout=30)


def test_a_kind_has_one_handler() -> None:
    """Registering a second handler for a kind is refused rather than silently replacing."""
    dispatcher = Dispatcher(MemoryOutboxStore(), clock=FrozenClock())

    async def handler(job: OutboxJob) -> None:
        return None

    dispatcher.register("mail", handler)
    with pytest.raises(ConfigurationError):
        dispatcher.register("mail", handler)
