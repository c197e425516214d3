"""Contract of a sign-in throttle storage (limits' async ``Storage`` interface), run
over limits' memory storage, SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio

import pytest
from limits.aio.storage import Storage

from keyturn.accounts.throttle import LoginThrottle, throttle_key
from keyturn.clock import FrozenClock
from keyturn.errors import TooManyAttempts
from keyturn.settings import Settings

KEY = "keyturn-login-account/abc/10/900/second"
OTHER = "keyturn-login-account/def/10/900/second"


async def test_a_missing_counter_is_zero(
    throttle_storage: Storage, throttle_clock: FrozenClock
) -> None:
    """get() of a key never incremented is 0, and its expiry is now."""
    assert await throttle_storage.get(KEY) == 0
    assert await throttle_storage.get_expiry(KEY) == pytest.approx(throttle_clock.now(), abs=0.01)


async def test_incr_counts_and_returns_the_new_value(throttle_storage: Storage) -> None:
    """incr() adds the amount and returns the total; get() agrees."""
    assert await throttle_storage.incr(KEY, 900) == 1
    assert await throttle_storage.incr(KEY, 900) == 2
    assert await throttle_storage.incr(KEY, 900, amount=3) == 5
    assert await throttle_storage.get(KEY) == 5
    assert await throttle_storage.get(OTHER) == 0


async def test_the_window_starts_at_the_first_increment(
    throttle_storage: Storage, throttle_clock: FrozenClock
) -> None:
    """Later increments do not extend the window set by the first one."""
    start = throttle_clock.now()
    await throttle_storage.incr(KEY, 900)
    throttle_clock.advance(300)
    await throttle_storage.incr(KEY, 900)
    assert await throttle_storage.get_expiry(KEY) == pytest.approx(start + 900, abs=0.01)


async def test_an_expired_counter_starts_over(
    throttle_storage: Storage, throttle_clock: FrozenClock
) -> None:
    """After the window, the count reads 0 and the next incr opens a new window."""
    await throttle_storage.incr(KEY, 60, amount=7)
    throttle_clock.advance(60)
    assert await throttle_storage.get(KEY) == 0
    assert await throttle_storage.incr(KEY, 60) == 1
    assert await throttle_storage.get_expiry(KEY) == pytest.approx(
        throttle_clock.now() + 60, abs=0.01
    )


async def test_clear_forgets_one_counter(throttle_storage: Storage) -> None:
    """clear() resets one key and leaves the others."""
    await throttle_storage.incr(KEY, 900)
    await throttle_storage.incr(OTHER, 900)
    await throttle_storage.clear(KEY)
    assert await throttle_storage.get(KEY) == 0
    assert await throttle_storage.get(OTHER) == 1
    await throttle_storage.clear("never-seen")


async def test_reset_forgets_every_counter(throttle_storage: Storage) -> None:
    """reset() clears all keys."""
    await throttle_storage.incr(KEY, 900)
    await throttle_storage.incr(OTHER, 900)
    await throttle_storage.reset()
    assert await throttle_storage.get(KEY) == 0
    assert await throttle_storage.get(OTHER) == 0


async def test_check_reports_healthy(throttle_storage: Storage) -> None:
    """check() is True for a reachable storage."""
    assert await throttle_storage.check() is True


async def test_concurrent_increments_lose_no_count(throttle_storage: Storage) -> None:
    """50 concurrent increments give a count of exactly 50 (atomic upsert)."""
    results = await asyncio.gather(*(throttle_storage.incr(KEY, 900) for _ in range(50)))
    assert sorted(results) == list(range(1, 51))
    assert await throttle_storage.get(KEY) == 50


async def test_login_throttle_locks_and_lifts_on_each_storage(
    throttle_storage: Storage, throttle_clock: FrozenClock
) -> None:
    """The throttle over each storage locks after 10 failures and lifts after the window."""
    throttle = LoginThrottle(throttle_storage, Settings(), throttle_clock)
    account = throttle_key("someone@example.org")
    for _ in range(10):
        await throttle.check(account, "192.0.2.1")
        await throttle.record_failure(account, "192.0.2.1")
    with pytest.raises(TooManyAttempts) as caught:
        await throttle.check(account, "192.0.2.2")
    assert caught.value.retry_after == 900
    throttle_clock.advance(900)
    await throttle.check(account, "192.0.2.2")
