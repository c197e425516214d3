"""Password hashing and policy (keyturn.passwords)."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import threading
import time
import unicodedata
from typing import Any

import pytest

from keyturn.accounts.passwords import (
    HASH_THREAD_NICENESS,
    PasswordHasher,
    PasswordPolicy,
    common_passwords,
)
from keyturn.errors import InvalidCredentials, WeakPassword
from keyturn.settings import Settings

PASSWORD = "correct horse battery staple"


# --- hashing -------------------------------------------------------------------------


async def test_hash_is_argon2id_phc_with_owasp_parameters() -> None:
    """The default hasher writes argon2id v19 with m=19456, t=2, p=1."""
    stored = await PasswordHasher().hash(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


async def test_two_hashes_of_one_password_differ(fast_hasher: PasswordHasher) -> None:
    """Each hash has its own random salt."""
    assert await fast_hasher.hash(PASSWORD) != await fast_hasher.hash(PASSWORD)


async def test_verify_accepts_the_right_password(fast_hasher: PasswordHasher) -> None:
    """Verification of the right password returns quietly, where the same hash
    refuses any other password (verification raises, it never returns False)."""
    stored = await fast_hasher.hash(PASSWORD)
    assert await fast_hasher.verify(stored, PASSWORD) is None
    with pytest.raises(InvalidCredentials):
        await fast_hasher.verify(stored, PASSWORD + " ")


async def test_verify_raises_on_wrong_password(fast_hasher: PasswordHasher) -> None:
    """A wrong password raises InvalidCredentials, never returns False."""
    stored = await fast_hasher.hash(PASSWORD)
    with pytest.raises(InvalidCredentials):
        await fast_hasher.verify(stored, PASSWORD + "!")


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plaintext",
        "$argon2id$v=19$m=19456,t=2,p=1$garbage",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "pbkdf2_sha256$600000$salt$hash",
    ],
)
async def test_verify_raises_on_malformed_or_unknown_hash(
    fast_hasher: PasswordHasher, stored: str
) -> None:
    """Hashes the hasher cannot read are a failed verification, not a crash."""
    with pytest.raises(InvalidCredentials):
        await fast_hasher.verify(stored, PASSWORD)


async def test_unicode_forms_of_one_password_verify(fast_hasher: PasswordHasher) -> None:
    """Composed and decomposed accents are the same password (NFKC)."""
    composed = "crème brûlée au café"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    await fast_hasher.verify(await fast_hasher.hash(composed), decomposed)


async def test_password_is_not_case_folded(fast_hasher: PasswordHasher) -> None:
    """Case matters in stored passwords."""
    stored = await fast_hasher.hash(PASSWORD)
    with pytest.raises(InvalidCredentials):
        await fast_hasher.verify(stored, PASSWORD.upper())


async def test_lone_surrogate_password_fails_cleanly(fast_hasher: PasswordHasher) -> None:
    """Invalid Unicode cannot be hashed (ValueError) and never verifies."""
    with pytest.raises(ValueError, match="Unicode"):
        await fast_hasher.hash("abc\ud800defghij")
    with pytest.raises(InvalidCredentials):
        await fast_hasher.verify(await fast_hasher.hash(PASSWORD), "abc\ud800")


@pytest.mark.parametrize(("memory_kib", "time_cost"), [(19455, 2), (19456, 1), (1024, 1)])
def test_weak_parameters_refused_without_opt_in(memory_kib: int, time_cost: int) -> None:
    """Parameters under the OWASP floor need allow_weak_parameters=True."""
    with pytest.raises(ValueError, match="OWASP"):
        PasswordHasher(memory_kib=memory_kib, time_cost=time_cost)
    PasswordHasher(memory_kib=memory_kib, time_cost=time_cost, allow_weak_parameters=True)


def test_from_settings_uses_the_configured_cost() -> None:
    """from_settings takes memory, time cost and concurrency from Settings."""
    settings = Settings(
        password_hash_memory_kib=32768, password_hash_time_cost=3, password_hash_concurrency=3
    )
    hasher = PasswordHasher.from_settings(settings)
    assert (hasher.memory_kib, hasher.time_cost, hasher.concurrency) == (32768, 3, 3)


async def test_needs_rehash(fast_hasher: PasswordHasher) -> None:
    """Weaker argon2 hashes and foreign formats need a rehash; current ones do not."""
    strong = PasswordHasher()
    assert strong.needs_rehash(await fast_hasher.hash(PASSWORD))
    assert not strong.needs_rehash(await strong.hash(PASSWORD))
    assert strong.needs_rehash("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW")
    assert strong.needs_rehash("garbage")


async def test_verify_dummy_always_raises(fast_hasher: PasswordHasher) -> None:
    """The dummy verification fails on first and later calls, whatever the input."""
    for password in ("", PASSWORD, PASSWORD):
        with pytest.raises(InvalidCredentials):
            await fast_hasher.verify_dummy(password)


class _CountingArgon2:
    """Wraps argon2.PasswordHasher and records the most hashes in flight at once."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.in_flight = 0
        self.most = 0

    def hash(self, secret: bytes) -> str:
        with self._lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            time.sleep(0.02)
            return str(self._inner.hash(secret))
        finally:
            with self._lock:
                self.in_flight -= 1


async def test_limiter_bounds_concurrent_hashes() -> None:
    """No more than `concurrency` hashes run at once; the rest wait their turn."""
    hasher = PasswordHasher(memory_kib=1024, time_cost=1, concurrency=2, allow_weak_parameters=True)
    counter = _CountingArgon2(hasher._argon2)
    hasher._argon2 = counter  # type: ignore[assignment]
    hashes = await asyncio.gather(*(hasher.hash(PASSWORD) for _ in range(8)))
    assert len(set(hashes)) == 8
    assert counter.most == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread niceness is Linux's")
async def test_hashing_threads_run_below_the_event_loop_priority() -> None:
    """During a sign-in storm the scheduler prefers the thread serving requests:
    argon2 runs in threads niced by HASH_THREAD_NICENESS, the loop's thread is untouched."""
    hasher = PasswordHasher(memory_kib=1024, time_cost=1, concurrency=1, allow_weak_parameters=True)
    loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def own_niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    assert await hasher._run(own_niceness) >= HASH_THREAD_NICENESS
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == loop_nice


async def test_hashing_does_not_block_the_event_loop() -> None:
    """While four real-cost hashes run, a 5 ms ticker keeps ticking: most gaps stay
    near 5 ms and none comes near the hashes' run time, which is the gap a hash run
    in the loop's own thread would leave. (Not an absolute bound: on a loaded
    2-CPU runner the scheduler alone can delay one tick by tens of ms.)"""
    hasher = PasswordHasher()
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick_task = asyncio.create_task(ticker())
    started = time.perf_counter()
    await asyncio.gather(*(hasher.hash(PASSWORD) for _ in range(4)))
    elapsed = time.perf_counter() - started
    done.set()
    await tick_task
    assert len(gaps) >= 3
    assert statistics.median(gaps) < 0.02
    assert max(gaps) < max(0.05, elapsed / 3)


# --- policy --------------------------------------------------------------------------


def test_policy_length_boundaries() -> None:
    """9 characters fail, 10 pass; 1024 pass, 1025 fail."""
    policy = PasswordPolicy()
    with pytest.raises(WeakPassword, match="at least 10 characters"):
        policy.check("kq8#vz!mp")
    policy.check("kq8#vz!mpw")
    at_limit = "kq8#vz!mpw" * 102 + "wxyz"
    assert len(at_limit) == 1024
    policy.check(at_limit)
    with pytest.raises(WeakPassword, match="at most 1024 characters"):
        policy.check(at_limit + "!")


def test_policy_refuses_a_megabyte_quickly() -> None:
    """A 1 MB password is refused in well under 50 ms, before any other work."""
    huge = "a" * 1_000_000
    started = time.perf_counter()
    with pytest.raises(WeakPassword, match="at most"):
        PasswordPolicy().check(huge)
    assert time.perf_counter() - started < 0.05


def test_policy_refuses_common_passwords_case_insensitively() -> None:
    """Passwords on zxcvbn's list are too common, whatever their case."""
    assert len(common_passwords()) > 25_000
    assert "password1234" in common_passwords()
    policy = PasswordPolicy()
    for password in ("password1234", "PassWord1234", "qwertyuiop"):
        with pytest.raises(WeakPassword, match="too common"):
            policy.check(password)


def test_policy_has_no_composition_rules() -> None:
    """Lower-case-only, digit-free passphrases are fine when long and uncommon,
    while length still counts (the policy does run)."""
    policy = PasswordPolicy()
    for passphrase in ("lowercase only passphrase without digits", "no symbols at all here"):
        policy.check(passphrase)
    with pytest.raises(WeakPassword):
        policy.check("short")


def test_policy_accepts_a_long_unicode_passphrase() -> None:
    """A 64-character non-Latin passphrase is accepted."""
    passphrase = ("пароль-日本語-ελληνικά-" * 4)[:64]
    assert len(passphrase) == 64
    PasswordPolicy().check(passphrase)


def test_policy_counts_normalised_code_points() -> None:
    """Decomposed accents count once: 'é' typed as e + U+0301 is one character."""
    decomposed = unicodedata.normalize("NFD", "éééééééé1")  # 9 characters when composed
    assert len(decomposed) > 10
    with pytest.raises(WeakPassword, match="at least 10"):
        PasswordPolicy().check(decomposed)


def test_policy_refuses_invalid_unicode() -> None:
    """Lone surrogates (possible in JSON) are refused, not hashed."""
    with pytest.raises(WeakPassword, match="Unicode"):
        PasswordPolicy().check("abcdefghij\ud800")


def test_policy_minimum_is_configurable() -> None:
    """min_length changes the lower bound and the message."""
    with pytest.raises(WeakPassword, match="at least 16 characters"):
        PasswordPolicy(min_length=16).check("kq8#vz!mpw12345")
    with pytest.raises(ValueError):
        PasswordPolicy(min_length=20, max_length=10)
