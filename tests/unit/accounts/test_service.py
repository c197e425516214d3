"""The accounts service (keyturn.accounts) over the memory user store."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import NoReturn

import pytest

from keyturn.accounts.passwords import PasswordHasher, PasswordPolicy
from keyturn.accounts.service import Accounts
from keyturn.clock import FrozenClock
from keyturn.errors import (
    EmailTaken,
    InvalidCredentials,
    InvalidEmail,
    UserNotFound,
    WeakPassword,
)
from keyturn.stores.memory import MemoryUserStore

EMAIL = "Alice@Example.com"
PASSWORD = "correct horse battery staple"


class SpyHasher(PasswordHasher):
    """A cheap hasher that counts the argon2 work it is asked to do."""

    def __init__(self) -> None:
        super().__init__(memory_kib=1024, time_cost=1, allow_weak_parameters=True)
        self.calls: list[str] = []

    async def hash(self, password: str) -> str:
        self.calls.append("hash")
        return await super().hash(password)

    async def verify(self, stored_hash: str, password: str) -> None:
        self.calls.append("verify")
        await super().verify(stored_hash, password)

    async def verify_dummy(self, password: str) -> NoReturn:
        self.calls.append("verify_dummy")
        await super().verify_dummy(password)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def users() -> MemoryUserStore:
    return MemoryUserStore()


@pytest.fixture
def spy() -> SpyHasher:
    return SpyHasher()


@pytest.fixture
def accounts(users: MemoryUserStore, spy: SpyHasher, clock: FrozenClock) -> Accounts:
    return Accounts(users, spy, PasswordPolicy(), clock)


# --- register ------------------------------------------------------------------------


async def test_register_creates_a_normalised_account(
    accounts: Accounts, clock: FrozenClock
) -> None:
    """register stores a uuid4 id, the normalised address, a hash and the clock's time."""
    user = await accounts.register("  " + EMAIL + " ", PASSWORD, roles=["admin"])
    assert uuid.UUID(user.id).version == 4
    assert user.email == "Alice@example.com"
    assert user.email_key == "alice@example.com"
    assert user.created_at == clock.now()
    assert user.roles == ("admin",)
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert await accounts.get(user.id) == user


async def test_email_is_unique_case_insensitively(accounts: Accounts) -> None:
    """A@x.io and a@x.io are one account: the second registration is EmailTaken."""
    await accounts.register("A@x.io", PASSWORD)
    with pytest.raises(EmailTaken):
        await accounts.register("a@X.IO", PASSWORD + "2")
    assert len(await accounts.list()) == 1


async def test_duplicate_registration_spends_no_hash(accounts: Accounts, spy: SpyHasher) -> None:
    """#10 item 3: an address that is taken (in any spelling) is EmailTaken before argon2 runs."""
    await accounts.register("a@example.com", PASSWORD)
    spy.calls.clear()
    for spelling in ("a@example.com", "A@EXAMPLE.COM", "a@e\uff58ample.com"):
        with pytest.raises(EmailTaken):
            await accounts.register(spelling, PASSWORD + "2")
    assert spy.calls == []


async def test_the_store_still_refuses_a_duplicate_that_races_the_check(
    users: MemoryUserStore, spy: SpyHasher, clock: FrozenClock
) -> None:
    """#10 item 3: the early check is an optimisation; the store's unique key is the guard."""

    class RacingStore(MemoryUserStore):
        async def get_by_email(self, email: str) -> None:  # type: ignore[override]
            return None  # the other registration commits after this check

    store = RacingStore()
    racing = Accounts(store, spy, PasswordPolicy(), clock)
    await racing.register("a@example.com", PASSWORD)
    with pytest.raises(EmailTaken):
        await racing.register("a@example.com", PASSWORD)
    assert len(await store.list()) == 1


async def test_invalid_email_refused_before_hashing(accounts: Accounts, spy: SpyHasher) -> None:
    """A bad address raises InvalidEmail without spending a hash."""
    with pytest.raises(InvalidEmail):
        await accounts.register("not an address", PASSWORD)
    assert spy.calls == []


@pytest.mark.parametrize("password", ["short", "password1234", "x" * 1_000_000])
async def test_weak_password_refused_before_hashing(
    accounts: Accounts, spy: SpyHasher, password: str
) -> None:
    """Policy failures raise WeakPassword without spending a hash."""
    with pytest.raises(WeakPassword):
        await accounts.register(EMAIL, password)
    assert spy.calls == []


# --- authenticate --------------------------------------------------------------------


async def test_authenticate_with_any_case_of_the_address(accounts: Accounts) -> None:
    """The right password signs in, whatever case the address is typed in."""
    registered = await accounts.register(EMAIL, PASSWORD)
    assert await accounts.authenticate("ALICE@example.COM ", PASSWORD) == registered


async def _failure(attempt: Awaitable[object]) -> InvalidCredentials:
    with pytest.raises(InvalidCredentials) as caught:
        await attempt
    return caught.value


async def test_unknown_wrong_and_disabled_are_indistinguishable(
    accounts: Accounts, spy: SpyHasher
) -> None:
    """Unknown address, wrong password and disabled account: same error, same work."""
    await accounts.register(EMAIL, PASSWORD)
    await accounts.register("bob@example.com", PASSWORD)
    await accounts.set_disabled("bob@example.com", True)
    await _failure(spy.verify_dummy("warm up"))  # build the dummy hash before comparing

    failures = []
    for email, password in (
        ("nobody@example.com", PASSWORD),
        (EMAIL, "wrong password!"),
        ("bob@example.com", PASSWORD),
    ):
        spy.calls.clear()
        failures.append(await _failure(accounts.authenticate(email, password)))
        assert len(spy.calls) == 1 and spy.calls[0] in ("verify", "verify_dummy")
    assert {(type(f), f.code, f.detail) for f in failures} == {
        (InvalidCredentials, "invalid_credentials", InvalidCredentials.default_detail)
    }


async def test_unknown_account_spends_a_verification(accounts: Accounts, spy: SpyHasher) -> None:
    """An unknown address runs the dummy verification, not nothing."""
    await _failure(accounts.authenticate("nobody@example.com", PASSWORD))
    assert spy.calls == ["verify_dummy"]


async def test_over_long_password_fails_without_hashing(accounts: Accounts, spy: SpyHasher) -> None:
    """A 1 MB password at sign-in is InvalidCredentials at once, with no argon2 work."""
    await accounts.register(EMAIL, PASSWORD)
    spy.calls.clear()
    started = time.perf_counter()
    await _failure(accounts.authenticate(EMAIL, "x" * 1_000_000))
    assert time.perf_counter() - started < 0.05
    assert spy.calls == []


async def test_invalid_address_at_sign_in_is_invalid_credentials(accounts: Accounts) -> None:
    """Sign-in never says "invalid e-mail": malformed input is just a failed sign-in."""
    failure = await _failure(accounts.authenticate("not an address", PASSWORD))
    assert failure.detail == InvalidCredentials.default_detail


async def test_sign_in_upgrades_a_weak_hash(users: MemoryUserStore, clock: FrozenClock) -> None:
    """A hash made with weaker parameters is replaced by a current one on sign-in."""
    weak = Accounts(users, SpyHasher(), PasswordPolicy(), clock)
    user = await weak.register(EMAIL, PASSWORD)
    assert "$m=1024,t=1,p=1$" in user.password_hash

    strong = Accounts(users, PasswordHasher(), PasswordPolicy(), clock)
    signed_in = await strong.authenticate(EMAIL, PASSWORD)
    assert signed_in.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    stored = await users.get(user.id)
    assert stored is not None and stored.password_hash == signed_in.password_hash
    await strong.authenticate(EMAIL, PASSWORD)  # the new hash verifies


async def test_current_hash_is_not_rewritten(accounts: Accounts, users: MemoryUserStore) -> None:
    """A hash with current parameters is left as it is."""
    user = await accounts.register(EMAIL, PASSWORD)
    await accounts.authenticate(EMAIL, PASSWORD)
    stored = await users.get(user.id)
    assert stored is not None and stored.password_hash == user.password_hash


async def test_timing_unknown_account_costs_like_a_wrong_password(
    users: MemoryUserStore, clock: FrozenClock
) -> None:
    """With real parameters, unknown-address and wrong-password medians are within 2x."""
    accounts = Accounts(users, PasswordHasher(), PasswordPolicy(), clock)
    await accounts.register(EMAIL, PASSWORD)
    await _failure(accounts.authenticate("nobody@example.com", PASSWORD))  # warm up

    async def timed(attempt: Callable[[], Awaitable[object]]) -> float:
        started = time.perf_counter()
        await _failure(attempt())
        return time.perf_counter() - started

    unknown: list[float] = []
    wrong: list[float] = []
    for _ in range(9):  # interleaved, so machine load affects both alike
        unknown.append(await timed(lambda: accounts.authenticate("nobody@example.com", PASSWORD)))
        wrong.append(await timed(lambda: accounts.authenticate(EMAIL, "wrong password!")))
    ratio = statistics.median(unknown) / statistics.median(wrong)
    assert 0.5 < ratio < 2, f"unknown/wrong median ratio {ratio:.2f}"


# --- change_password, disable, list --------------------------------------------------


async def test_change_password(accounts: Accounts) -> None:
    """The new password works and the old one stops working."""
    user = await accounts.register(EMAIL, PASSWORD)
    await accounts.change_password(user.id, PASSWORD, "a brand new passphrase")
    await accounts.authenticate(EMAIL, "a brand new passphrase")
    await _failure(accounts.authenticate(EMAIL, PASSWORD))


async def test_change_password_rechecks_the_current_one(accounts: Accounts) -> None:
    """A wrong current password is InvalidCredentials and changes nothing."""
    user = await accounts.register(EMAIL, PASSWORD)
    await _failure(accounts.change_password(user.id, "not my password", "a brand new passphrase"))
    await accounts.authenticate(EMAIL, PASSWORD)


async def test_change_password_applies_the_policy(accounts: Accounts) -> None:
    """A weak new password is WeakPassword and changes nothing."""
    user = await accounts.register(EMAIL, PASSWORD)
    with pytest.raises(WeakPassword):
        await accounts.change_password(user.id, PASSWORD, "password1234")
    await accounts.authenticate(EMAIL, PASSWORD)


async def test_change_password_for_unknown_user(accounts: Accounts) -> None:
    """An id with no account is UserNotFound."""
    with pytest.raises(UserNotFound):
        await accounts.change_password("no-such-id", PASSWORD, "a brand new passphrase")


async def test_disable_and_enable(accounts: Accounts) -> None:
    """A disabled account cannot sign in; enabling it again restores sign-in."""
    await accounts.register(EMAIL, PASSWORD)
    disabled = await accounts.set_disabled("alice@EXAMPLE.com", True)
    assert disabled.disabled
    await _failure(accounts.authenticate(EMAIL, PASSWORD))
    enabled = await accounts.set_disabled(EMAIL, False)
    assert not enabled.disabled
    await accounts.authenticate(EMAIL, PASSWORD)


async def test_disable_unknown_address(accounts: Accounts) -> None:
    """Disabling an address with no account is UserNotFound (operator path)."""
    with pytest.raises(UserNotFound):
        await accounts.set_disabled("nobody@example.com", True)


async def test_list_and_get(accounts: Accounts, clock: FrozenClock) -> None:
    """list returns every account oldest first; get returns None for unknown ids."""
    first = await accounts.register("first@example.com", PASSWORD)
    clock.advance(1)
    second = await accounts.register("second@example.com", PASSWORD)
    assert [user.id for user in await accounts.list()] == [first.id, second.id]
    assert await accounts.get("no-such-id") is None


def test_core_imports_no_web_framework() -> None:
    """The accounts package (service, passwords, e-mails) imports without a web framework."""
    code = (
        "import sys, keyturn.accounts.service, keyturn.accounts.passwords, keyturn.accounts.emails;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('starlette', 'fastapi')];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
