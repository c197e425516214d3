"""SingleFlight: one store read per key however many requests need it."""

from __future__ import annotations

import asyncio

import pytest

from keyturn.errors import StoreUnavailable
from keyturn.singleflight import SingleFlight


async def test_concurrent_callers_share_one_load() -> None:
    """Ten callers of one key cause one load and all get its result."""
    loads = 0
    release = asyncio.Event()

    async def load() -> str:
        nonlocal loads
        loads += 1
        await release.wait()
        return "value"

    flight: SingleFlight[str, str] = SingleFlight()
    waiters = [asyncio.create_task(flight.run("k", load)) for _ in range(10)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiters) == ["value"] * 10
    assert loads == 1
    assert not flight.running("k")


async def test_a_failure_reaches_every_waiter_and_the_next_call_retries() -> None:
    """A failed load fails all its waiters; the next call starts a new load."""
    attempts = 0

    async def load() -> str:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0)
        if attempts == 1:
            raise StoreUnavailable("down")
        return "back"

    flight: SingleFlight[str, str] = SingleFlight()
    outcomes = await asyncio.gather(
        *(flight.run("k", load) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(outcome, StoreUnavailable) for outcome in outcomes)
    assert await flight.run("k", load) == "back"
    assert attempts == 2


async def test_cancelling_one_waiter_does_not_cancel_the_load() -> None:
    """A client that disconnects must not abort the read others are waiting for."""
    release = asyncio.Event()

    async def load() -> int:
        await release.wait()
        return 42

    flight: SingleFlight[str, int] = SingleFlight()
    impatient = asyncio.create_task(flight.run("k", load))
    patient = asyncio.create_task(flight.run("k", load))
    await asyncio.sleep(0)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    release.set()
    assert await patient == 42


async def test_start_runs_in_the_background_once() -> None:
    """start() begins a load without waiting and does not stack a second one."""
    loads = 0
    release = asyncio.Event()

    async def load() -> None:
        nonlocal loads
        loads += 1
        await release.wait()

    flight: SingleFlight[str, None] = SingleFlight()
    flight.start("k", load)
    flight.start("k", load)
    await asyncio.sleep(0)
    assert flight.running("k")
    release.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert loads == 1
    assert not flight.running("k")
