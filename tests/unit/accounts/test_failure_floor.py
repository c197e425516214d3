"""The failure floor: every failed sign-in takes as long as the slowest
verification keyturn may have to do, so timing does not tell imported accounts
from unknown addresses (#10 item 6)."""

from __future__ import annotations

import time
from typing import NoReturn

import bcrypt
import pytest

from keyturn.accounts.passwords import FAILURE_FLOOR_MARGIN, PasswordHasher, PasswordPolicy
from keyturn.accounts.service import Accounts
from keyturn.clock import FrozenClock
from keyturn.errors import InvalidCredentials
from keyturn.stores.memory import MemoryUserStore

PASSWORD = "correct horse battery staple"
#: What the fake hasher pretends each verification costs, in seconds.
ARGON2_COST = 0.055
BCRYPT_COST = 0.340


class FakeTimer:
    """A monotonic clock that only moves when the fake hasher spends time."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CostedHasher(PasswordHasher):
    """A cheap real hasher that *pretends* argon2 costs 55 ms and bcrypt 340 ms:
    it moves the fake timer and reports the cost as measured."""

    def __init__(self, timer: FakeTimer) -> None:
        super().__init__(memory_kib=1024, time_cost=1, allow_weak_parameters=True)
        self.timer = timer

    def _spend(self, cost: float) -> None:
        self.timer.now += cost
        self.slowest_verification = max(self.slowest_verification, cost)

    async def calibrate(self, stored_hashes: object = ()) -> float:
        self._spend(ARGON2_COST)
        for stored_hash in stored_hashes:  # type: ignore[attr-defined]
            self._spend(BCRYPT_COST if stored_hash.startswith("$2") else ARGON2_COST)
        return self.failure_floor

    async def verify(self, stored_hash: str, password: str) -> None:
        self._spend(BCRYPT_COST if stored_hash.startswith("$2") else ARGON2_COST)
        await super().verify(stored_hash, password)

    async def verify_dummy(self, password: str) -> NoReturn:
        self._spend(ARGON2_COST)
        await super().verify_dummy(password)


class RecordingSleep:
    """Records each requested delay and moves the fake timer by it."""

    def __init__(self, timer: FakeTimer) -> None:
        self.timer = timer
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.timer.now += delay


async def test_every_failure_is_padded_to_the_slowest_verification() -> None:
    """#10 item 6: unknown address, wrong argon2 password, wrong password for a bcrypt
    import and a disabled account all end at the same time: the floor, set from the
    bcrypt import found at calibration; a success is never padded."""
    timer = FakeTimer()
    sleep = RecordingSleep(timer)
    users = MemoryUserStore()
    hasher = CostedHasher(timer)
    accounts = Accounts(users, hasher, PasswordPolicy(), FrozenClock(), timer=timer, sleep=sleep)
    await accounts.register("alice@example.com", PASSWORD)
    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    await accounts.import_user("bob@example.com", legacy)
    await accounts.register("carol@example.com", PASSWORD)
    await accounts.set_disabled("carol@example.com", True)

    floor = await accounts.calibrate_failure_floor()
    assert floor == pytest.approx(BCRYPT_COST * FAILURE_FLOOR_MARGIN)

    for email, password in [
        ("nobody@example.com", PASSWORD),
        ("alice@example.com", "wrong password!"),
        ("bob@example.com", "wrong password!"),
        ("carol@example.com", PASSWORD),
    ]:
        started = timer.now
        with pytest.raises(InvalidCredentials):
            await accounts.authenticate(email, password)
        assert timer.now - started == pytest.approx(floor), email
    assert sleep.delays == pytest.approx(
        [floor - ARGON2_COST, floor - ARGON2_COST, floor - BCRYPT_COST, floor - ARGON2_COST]
    )
    sleep.delays.clear()
    await accounts.authenticate("alice@example.com", PASSWORD)
    assert sleep.delays == []


async def test_first_sign_in_calibrates_when_nobody_did() -> None:
    """#10 item 6: an Accounts used without calibrate_failure_floor() calibrates on its
    first sign-in, so even the first probe of a bcrypt import is padded."""
    timer = FakeTimer()
    sleep = RecordingSleep(timer)
    users = MemoryUserStore()
    accounts = Accounts(
        users, CostedHasher(timer), PasswordPolicy(), FrozenClock(), timer=timer, sleep=sleep
    )
    await accounts.import_user(
        "bob@example.com", bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    )
    with pytest.raises(InvalidCredentials):
        await accounts.authenticate("nobody@example.com", PASSWORD)
    assert sleep.delays == pytest.approx([BCRYPT_COST * FAILURE_FLOOR_MARGIN - ARGON2_COST])


async def test_calibration_times_the_slowest_imported_hash_for_real() -> None:
    """#10 item 6: with a real hasher, calibration finds the costliest bcrypt import in
    the store and the floor covers a real check of it (generous ratios, no thresholds
    on the wall clock except that a sleep is never shorter than asked)."""
    users = MemoryUserStore()
    hasher = PasswordHasher(memory_kib=1024, time_cost=1, allow_weak_parameters=True)
    accounts = Accounts(users, hasher, PasswordPolicy(), FrozenClock())
    slow = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()
    await accounts.import_user("slow@example.com", slow)
    await accounts.import_user(
        "fast@example.com", bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    )
    started = time.perf_counter()
    bcrypt.checkpw(b"not the password", slow.encode())
    one_check = time.perf_counter() - started

    floor = await accounts.calibrate_failure_floor()
    assert floor >= 0.5 * one_check  # it timed the cost-10 hash, not the cost-4 one
    started = time.perf_counter()
    with pytest.raises(InvalidCredentials):
        await accounts.authenticate("nobody@example.com", PASSWORD)
    assert time.perf_counter() - started >= floor * 0.99


async def test_a_slower_verification_raises_the_floor() -> None:
    """#10 item 6: a hash slower than anything calibrated (imported while running)
    raises the floor at its first verification, for every later failure."""
    users = MemoryUserStore()
    hasher = PasswordHasher(memory_kib=1024, time_cost=1, allow_weak_parameters=True)
    accounts = Accounts(users, hasher, PasswordPolicy(), FrozenClock())
    before = await accounts.calibrate_failure_floor()
    slow = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(10)).decode()
    await accounts.import_user("late@example.com", slow)
    with pytest.raises(InvalidCredentials):
        await accounts.authenticate("late@example.com", "wrong password!")
    assert hasher.failure_floor > before
    assert hasher.slowest_verification * FAILURE_FLOOR_MARGIN == pytest.approx(hasher.failure_floor)
