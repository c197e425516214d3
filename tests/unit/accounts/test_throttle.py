"""Sign-in throttling (SPEC "Accounts, throttling"; SEC-66, SEC-67) and the client address."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from limits.aio.storage import MemoryStorage

from keyturn.accounts.addresses import client_address, client_bucket
from keyturn.accounts.throttle import LoginThrottle, _digest, throttle_key
from keyturn.clock import FrozenClock, SystemClock
from keyturn.errors import StoreUnavailable, TooManyAttempts
from keyturn.settings import Settings
from keyturn.stores.sql import create_engine_for
from keyturn.stores.sql.throttle import SqlThrottleStorage

SETTINGS = Settings(
    login_max_account_failures=10, login_max_client_failures=100, login_failure_window=900
)
ALICE = throttle_key("Alice@Example.org")
BOB = throttle_key("bob@example.org")
CLIENT = "203.0.113.7"


@pytest.fixture
def throttle() -> LoginThrottle:
    """A throttle over limits' in-process memory storage (system clock)."""
    return LoginThrottle(MemoryStorage(), SETTINGS, SystemClock())


async def fail(throttle: LoginThrottle, account: str, client: str = CLIENT) -> None:
    """One failed sign-in attempt, as the auth service makes it."""
    await throttle.check(account, client)
    await throttle.record_failure(account, client)


async def test_tenth_failure_locks_the_account_even_for_the_right_password(
    throttle: LoginThrottle,
) -> None:
    """After 10 failures the next attempt is refused before any password check."""
    for _ in range(10):
        await fail(throttle, ALICE)
    with pytest.raises(TooManyAttempts) as caught:
        await throttle.check(ALICE, CLIENT)
    assert 890 <= caught.value.retry_after <= 900


async def test_account_limit_counts_failures_from_any_address(throttle: LoginThrottle) -> None:
    """Rotating the client address does not reset the account's count."""
    for number in range(10):
        await fail(throttle, ALICE, f"198.51.100.{number}")
    with pytest.raises(TooManyAttempts):
        await throttle.check(ALICE, "192.0.2.1")


async def test_success_before_the_limit_resets_the_account_count(throttle: LoginThrottle) -> None:
    """A success clears the account's failures, so nine more are allowed afterwards."""
    for _ in range(9):
        await fail(throttle, ALICE)
    await throttle.check(ALICE, CLIENT)
    await throttle.record_success(ALICE)
    for _ in range(9):
        await fail(throttle, ALICE)
    await throttle.check(ALICE, CLIENT)


async def test_an_attempt_ended_by_an_outage_is_given_back(throttle: LoginThrottle) -> None:
    """Only failed sign-ins count: attempts that ended in a store outage (released)
    never lock the account, however many there are."""
    for _ in range(25):
        await throttle.check(ALICE, CLIENT)
        await throttle.release(ALICE)
    await throttle.check(ALICE, CLIENT)  # still allowed
    for _ in range(9):
        await throttle.record_failure(ALICE, CLIENT)
        await throttle.check(ALICE, CLIENT)
    await throttle.record_failure(ALICE, CLIENT)
    with pytest.raises(TooManyAttempts):
        await throttle.check(ALICE, CLIENT)


async def test_accounts_are_counted_independently(throttle: LoginThrottle) -> None:
    """A locked account does not affect another account."""
    for _ in range(10):
        await fail(throttle, ALICE)
    await throttle.check(BOB, CLIENT)


async def test_the_account_key_is_case_insensitive(throttle: LoginThrottle) -> None:
    """Changing the case of the address does not dodge the account limit."""
    for number in range(10):
        await fail(
            throttle, throttle_key("ALICE@example.org" if number % 2 else "alice@EXAMPLE.org")
        )
    with pytest.raises(TooManyAttempts):
        await throttle.check(ALICE, CLIENT)


@pytest.mark.parametrize(
    "spelling",
    [
        "alice@e\uff58ample.org",
        "alice@example\u3002org",
        " ALICE@EXAMPLE.ORG ",
        "alice@xn--exmple-cua.org",
    ],
)
def test_the_account_key_is_the_account_lookup_key(spelling: str) -> None:
    """#10 item 1: every spelling that finds an account keys the throttle as that
    account's stored email_key (full-width letters, the ideographic dot, punycode)."""
    from keyturn.accounts.emails import normalize_email
    from keyturn.stores.records import User

    canonical = "alice@exämple.org" if "xn--" in spelling else "alice@example.org"
    user = User(id="u", email=normalize_email(canonical), password_hash="x", created_at=0.0)
    assert throttle_key(spelling) == user.email_key


def test_an_address_that_does_not_validate_still_gets_a_key() -> None:
    """#10 item 1: text that is no valid address falls back to its case-folded form,
    so it is still counted (and never raises)."""
    assert throttle_key(" Not An Address ") == "not an address"
    assert throttle_key("a@b") == "a@b"


async def test_client_limit_spans_many_accounts(throttle: LoginThrottle) -> None:
    """100 failures on 100 different accounts from one address lock that address."""
    for number in range(100):
        await fail(throttle, throttle_key(f"user{number}@example.org"))
    with pytest.raises(TooManyAttempts):
        await throttle.check(throttle_key("fresh@example.org"), CLIENT)
    await throttle.check(throttle_key("fresh@example.org"), "192.0.2.99")


async def test_success_does_not_reset_the_client_count(throttle: LoginThrottle) -> None:
    """A stuffing client cannot clear its own count with one account it controls."""
    for number in range(99):
        await fail(throttle, throttle_key(f"user{number}@example.org"))
    await throttle.check(BOB, CLIENT)
    await throttle.record_success(BOB)
    await fail(throttle, throttle_key("last@example.org"))
    with pytest.raises(TooManyAttempts):
        await throttle.check(BOB, CLIENT)


async def test_concurrent_attempts_cannot_overshoot_the_account_limit(
    throttle: LoginThrottle,
) -> None:
    """check() reserves an attempt, so 20 parallel checks let at most 10 through."""
    import asyncio

    results = await asyncio.gather(
        *(throttle.check(ALICE, f"198.51.100.{n}") for n in range(20)), return_exceptions=True
    )
    passed = [result for result in results if result is None]
    assert len(passed) == 10
    assert all(isinstance(r, TooManyAttempts) for r in results if r is not None)


async def test_the_window_passing_lifts_the_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the window has passed, the locked account may try again."""
    clock = FrozenClock(time.time())
    monkeypatch.setattr(time, "time", clock.now)  # limits' memory storage reads time.time
    throttle = LoginThrottle(MemoryStorage(), SETTINGS, clock)
    for _ in range(10):
        await fail(throttle, ALICE)
    clock.advance(600)
    with pytest.raises(TooManyAttempts) as caught:
        await throttle.check(ALICE, CLIENT)
    assert caught.value.retry_after == 300
    clock.advance(300)
    await throttle.check(ALICE, CLIENT)


@pytest.fixture
async def sql_throttle_storage() -> AsyncIterator[SqlThrottleStorage]:
    """A SQL throttle storage on an in-memory SQLite database with a frozen clock."""
    from keyturn.stores.sql.migrate import upgrade

    engine = create_engine_for("sqlite+aiosqlite:///:memory:")
    await upgrade(engine)
    try:
        yield SqlThrottleStorage(engine, clock=FrozenClock())
    finally:
        await engine.dispose()


async def test_sql_storage_windows_follow_the_injected_clock(
    sql_throttle_storage: SqlThrottleStorage,
) -> None:
    """The throttle takes the SQL storage's clock, so a frozen clock drives the window."""
    throttle = LoginThrottle(sql_throttle_storage, SETTINGS, sql_throttle_storage.clock)
    clock = sql_throttle_storage.clock
    assert isinstance(clock, FrozenClock)
    for _ in range(10):
        await fail(throttle, ALICE)
    with pytest.raises(TooManyAttempts) as caught:
        await throttle.check(ALICE, CLIENT)
    assert caught.value.retry_after == 900
    clock.advance(900)
    await throttle.check(ALICE, CLIENT)


async def test_storage_keys_hold_no_email_or_address(
    sql_throttle_storage: SqlThrottleStorage,
) -> None:
    """Neither the e-mail address nor the client IP appears in a throttle key."""
    import sqlalchemy as sa

    from keyturn.stores.sql.throttle import login_throttle

    throttle = LoginThrottle(sql_throttle_storage, SETTINGS, sql_throttle_storage.clock)
    await fail(throttle, ALICE)
    async with sql_throttle_storage.engine.connect() as connection:
        keys = (await connection.execute(sa.select(login_throttle.c.key))).scalars().all()
    assert len(keys) == 2
    assert not any("alice" in key or CLIENT in key for key in keys)


async def test_sweep_deletes_only_expired_counters(
    sql_throttle_storage: SqlThrottleStorage,
) -> None:
    """sweep() purges counters whose window has passed and keeps live ones."""
    throttle = LoginThrottle(sql_throttle_storage, SETTINGS, sql_throttle_storage.clock)
    clock = sql_throttle_storage.clock
    assert isinstance(clock, FrozenClock)
    await fail(throttle, ALICE)
    clock.advance(900)
    await fail(throttle, BOB, "192.0.2.50")
    assert await throttle.sweep() == 2
    assert await throttle.sweep() == 0
    assert await sql_throttle_storage.get(throttle._account_limit.key_for(_digest(BOB))) == 1


async def test_sweep_is_a_no_op_for_self_expiring_storages(throttle: LoginThrottle) -> None:
    """limits' memory storage expires keys itself, so sweep() has nothing to do."""
    await fail(throttle, ALICE)
    assert await throttle.sweep() == 0


async def test_a_store_failure_fails_closed() -> None:
    """An unreachable throttle store refuses the attempt with StoreUnavailable."""
    engine = create_engine_for("sqlite+aiosqlite:////nonexistent-dir/x/keyturn.db")
    counters = SqlThrottleStorage(engine, clock=SystemClock())
    throttle = LoginThrottle(counters, SETTINGS, counters.clock)
    try:
        with pytest.raises(StoreUnavailable):
            await throttle.check(ALICE, CLIENT)
    finally:
        await engine.dispose()


async def test_an_unexpected_storage_error_also_fails_closed() -> None:
    """Any storage exception during check becomes StoreUnavailable, never a pass."""

    class Broken(MemoryStorage):
        async def get(self, key: str) -> int:
            raise ValueError("boom")

    with pytest.raises(StoreUnavailable):
        await LoginThrottle(Broken(), SETTINGS, SystemClock()).check(ALICE, CLIENT)


# --- client_address --------------------------------------------------------------------


def test_peer_is_used_without_trusted_proxies() -> None:
    """With no trusted proxies, X-Forwarded-For is ignored entirely."""
    assert client_address("203.0.113.7", "1.2.3.4", []) == "203.0.113.7"


def test_untrusted_peer_cannot_spoof_forwarded_for() -> None:
    """A peer outside the trusted proxies cannot choose its address by header."""
    assert client_address("203.0.113.7", "10.0.0.1", ["10.0.0.0/8"]) == "203.0.113.7"


def test_trusted_proxy_reveals_the_client() -> None:
    """Behind a trusted proxy, the right-most untrusted X-Forwarded-For entry is the client."""
    assert client_address("10.0.0.2", "198.51.100.9", ["10.0.0.0/8"]) == "198.51.100.9"


def test_spoofed_left_entries_are_ignored() -> None:
    """Entries the client wrote itself (left of what the proxies added) are not believed."""
    header = "1.1.1.1, 2.2.2.2, 198.51.100.9, 10.0.0.3"
    assert client_address("10.0.0.2", header, ["10.0.0.0/8"]) == "198.51.100.9"


def test_garbage_forwarded_for_falls_back_to_the_peer() -> None:
    """An unparsable hop before the client is found yields the peer address."""
    assert client_address("10.0.0.2", "198.51.100.9, not-an-ip", ["10.0.0.0/8"]) == "10.0.0.2"
    assert client_address("10.0.0.2", "", ["10.0.0.0/8"]) == "10.0.0.2"


def test_only_trusted_hops_yield_the_left_most() -> None:
    """A chain made only of trusted proxies yields its left-most entry."""
    assert client_address("10.0.0.2", "10.0.0.5, 10.0.0.4", ["10.0.0.0/8"]) == "10.0.0.5"


def test_ports_brackets_and_mapped_addresses_are_normalized() -> None:
    """Ports, IPv6 brackets and IPv4-mapped IPv6 addresses reduce to the bare address."""
    assert client_address("::ffff:10.0.0.2", "[2001:db8::1]:443", ["10.0.0.1/8"]) == "2001:db8::1"
    assert client_address("10.0.0.2", "198.51.100.9:5555", ["10.0.0.0/8"]) == "198.51.100.9"
    assert client_address("2001:DB8::5", None, []) == "2001:db8::5"


def test_missing_or_non_ip_peer() -> None:
    """No peer gives 'unknown'; a non-IP peer (unix socket) is used as is."""
    assert client_address(None, "1.2.3.4", ["0.0.0.0/0"]) == "unknown"
    assert client_address("/run/keyturn.sock", "1.2.3.4", ["0.0.0.0/0"]) == "/run/keyturn.sock"


# --- IPv6 clients are counted per network (#10 item 7) ------------------------------------


def test_ipv6_clients_are_bucketed_by_their_64() -> None:
    """#10 item 7: every address of one /64 is one client; another /64 is another."""
    assert client_bucket("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert client_bucket("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert client_bucket("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert client_bucket("[2001:db8:1:2::7]:443") == "2001:db8:1:2::/64"


def test_ipv4_and_mapped_ipv4_are_counted_by_address() -> None:
    """#10 item 7: IPv4, and IPv4-mapped IPv6 as IPv4, are never widened to a network."""
    assert client_bucket("203.0.113.7") == "203.0.113.7"
    assert client_bucket("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_bucket("unknown") == "unknown"
    assert client_bucket("/run/keyturn.sock") == "/run/keyturn.sock"


def test_the_ipv6_prefix_is_a_setting() -> None:
    """#10 item 7: --throttle-ipv6-prefix picks the bucket (/56 for a site, /128 for none)."""
    assert client_bucket("2001:db8:1:2::1", 56) == "2001:db8:1::/56"
    assert client_bucket("2001:db8:1:2::1", 128) == "2001:db8:1:2::1"
    assert Settings().throttle_ipv6_prefix == 64


async def test_one_64_shares_the_client_limit() -> None:
    """#10 item 7: failures from many addresses of one /64 add up to one client's limit,
    while a neighbouring /64 keeps its own count."""
    settings = Settings(login_max_client_failures=3)
    throttle = LoginThrottle(MemoryStorage(), settings, SystemClock())
    for number in range(3):
        account = throttle_key(f"user{number}@example.org")
        await fail(throttle, account, f"2001:db8:0:1::{number + 1:x}")
    with pytest.raises(TooManyAttempts):
        await throttle.check(throttle_key("fresh@example.org"), "2001:db8:0:1:dead:beef::9")
    await throttle.check(throttle_key("fresh@example.org"), "2001:db8:0:2::1")
