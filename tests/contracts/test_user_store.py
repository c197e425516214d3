"""The UserStore contract, run against every implementation."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid

import pytest

from keyturn.errors import EmailTaken, StoreUnavailable, UserNotFound
from keyturn.settings import Settings
from keyturn.stores.factory import open_storage
from keyturn.stores.protocols import Storage, UserStore
from keyturn.stores.records import User
from keyturn.stores.sql import SqlStorage, create_engine_for
from keyturn.web.routes.health import PING_TIMEOUT

try:
    from services import free_port
except ImportError:  # pragma: no cover - ``tests`` imported as a package
    from tests.services import free_port


def make_user(email: str = "alice@example.com", **changes: object) -> User:
    user = User(
        id=str(uuid.uuid4()),
        email=email,
        password_hash="$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        created_at=1_800_000_000.0,
    )
    return dataclasses.replace(user, **changes)  # type: ignore[arg-type]


async def test_add_then_get_returns_equal_record(users: UserStore) -> None:
    """A stored account comes back field for field, by id and by e-mail."""
    user = make_user(roles=("admin", "support"), created_at=1_800_000_000.123456)
    await users.add(user)
    assert await users.get(user.id) == user
    assert await users.get_by_email("alice@example.com") == user


async def test_unknown_id_and_email_are_none(users: UserStore) -> None:
    """Looking up what was never stored gives None, not an error."""
    assert await users.get(str(uuid.uuid4())) is None
    assert await users.get_by_email("nobody@example.com") is None


async def test_get_by_email_is_case_insensitive(users: UserStore) -> None:
    """`A@x.io` finds the account registered as `a@x.io` and keeps the shown form."""
    await users.add(make_user("Alice@Example.COM"))
    found = await users.get_by_email("alice@example.com")
    assert found is not None
    assert found.email == "Alice@Example.COM"
    assert await users.get_by_email("  ALICE@EXAMPLE.com ") == found


async def test_duplicate_email_differing_in_case_is_taken(users: UserStore) -> None:
    """`A@x.io` and `a@x.io` are one account: the second add raises EmailTaken."""
    await users.add(make_user("a@x.io"))
    with pytest.raises(EmailTaken):
        await users.add(make_user("A@x.io"))
    assert len(await users.list()) == 1


async def test_concurrent_adds_of_one_email_admit_exactly_one(users: UserStore) -> None:
    """Racing sign-ups for one address: one wins, the rest get EmailTaken."""
    spellings = ["race@x.io", "RACE@x.io", "Race@X.io", "race@X.IO"]
    results = await asyncio.gather(
        *(users.add(make_user(email)) for email in spellings), return_exceptions=True
    )
    assert sum(result is None for result in results) == 1
    assert all(isinstance(r, EmailTaken) for r in results if r is not None)


async def test_list_is_oldest_first(users: UserStore) -> None:
    """list() orders by creation time, ties broken by e-mail key."""
    late = make_user("late@x.io", created_at=300.0)
    early = make_user("early@x.io", created_at=100.0)
    tie_b = make_user("B@x.io", created_at=200.0)
    tie_a = make_user("a@x.io", created_at=200.0)
    for user in (late, early, tie_b, tie_a):
        await users.add(user)
    assert [user.id for user in await users.list()] == [early.id, tie_a.id, tie_b.id, late.id]


async def test_list_of_empty_store_is_empty(users: UserStore) -> None:
    """A fresh store lists no accounts."""
    assert await users.list() == []


async def test_set_password_hash_replaces_only_the_hash(users: UserStore) -> None:
    """set_password_hash changes the hash and leaves every other field alone."""
    user = make_user(roles=("admin",))
    await users.add(user)
    await users.set_password_hash(user.id, "$argon2id$new")
    assert await users.get(user.id) == dataclasses.replace(user, password_hash="$argon2id$new")


async def test_set_disabled_round_trips(users: UserStore) -> None:
    """An account can be disabled and enabled again; the flag is stored."""
    user = make_user()
    await users.add(user)
    await users.set_disabled(user.id, True)
    disabled = await users.get(user.id)
    assert disabled is not None and disabled.disabled is True
    await users.set_disabled(user.id, False)
    assert await users.get(user.id) == user


async def test_setting_same_value_twice_is_not_an_error(users: UserStore) -> None:
    """Updating to the current value still finds the account (no UserNotFound)
    and leaves it exactly as it was."""
    user = make_user()
    await users.add(user)
    await users.set_disabled(user.id, False)
    await users.set_password_hash(user.id, user.password_hash)
    assert await users.get(user.id) == user


async def test_set_password_hash_on_unknown_id_raises(users: UserStore) -> None:
    """Changing the hash of an account that does not exist raises UserNotFound."""
    with pytest.raises(UserNotFound):
        await users.set_password_hash(str(uuid.uuid4()), "$argon2id$x")


async def test_set_disabled_on_unknown_id_raises(users: UserStore) -> None:
    """Disabling an account that does not exist raises UserNotFound."""
    with pytest.raises(UserNotFound):
        await users.set_disabled(str(uuid.uuid4()), True)


@pytest.mark.parametrize("roles", [(), ("admin",), ("admin", "ops,billing", "ünïcødé")])
async def test_roles_round_trip(users: UserStore, roles: tuple[str, ...]) -> None:
    """Roles come back as the same tuple, in order, commas and unicode included."""
    user = make_user(roles=roles)
    await users.add(user)
    stored = await users.get(user.id)
    assert stored is not None and stored.roles == roles


@pytest.mark.parametrize(
    "email", ["jörg.müller@example.de", "用户@例子.广告", "ΣΊΣΥΦΟΣ@example.gr"]
)
async def test_unicode_email_local_parts(users: UserStore, email: str) -> None:
    """Unicode addresses are stored as shown and found case-insensitively."""
    user = make_user(email)
    await users.add(user)
    assert await users.get_by_email(email.upper()) == user
    assert await users.get_by_email(email.casefold()) == user
    with pytest.raises(EmailTaken):
        await users.add(make_user(email.lower()))


async def test_ping_on_healthy_storage(storage: Storage) -> None:
    """A healthy storage answers ping(), well within the time /healthz gives it."""
    started = time.monotonic()
    assert await storage.ping() is None
    assert time.monotonic() - started < PING_TIMEOUT


# --- outages: no server needed, only the driver ---------------------------------------


async def test_ping_on_unreachable_postgres_raises_store_unavailable() -> None:
    """ping() against a closed port fails closed, and never shows the password."""
    pytest.importorskip("asyncpg")
    url = f"postgresql+asyncpg://keyturn:s3cret-pw@127.0.0.1:{free_port()}/keyturn"
    storage = SqlStorage(create_engine_for(url))
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await storage.ping()
        with pytest.raises(StoreUnavailable):
            await storage.users.get("anything")
    finally:
        await storage.close()
    assert "s3cret-pw" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


async def test_open_storage_on_unreachable_postgres_names_it_without_password() -> None:
    """open_storage says which database it could not reach, password masked, one line."""
    pytest.importorskip("asyncpg")
    url = f"postgresql+asyncpg://keyturn:s3cret-pw@127.0.0.1:{free_port()}/keyturn"
    with pytest.raises(StoreUnavailable) as caught:
        await open_storage(Settings(database_url=url))
    message = str(caught.value)
    assert "s3cret-pw" not in message
    assert "keyturn:***@127.0.0.1" in message
    assert "\n" not in message


@pytest.mark.postgres
async def test_wrong_password_on_real_postgres_is_unavailable(postgres_url: str) -> None:
    """A rejected login to a live server is an outage that never echoes the password."""
    url = postgres_url.replace(":keyturn-test-password@", ":wrong-pw-123@")
    storage = SqlStorage(create_engine_for(url))
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await storage.ping()
    finally:
        await storage.close()
    assert "wrong-pw-123" not in str(caught.value)


def _bcrypt(cost: int, prefix: str = "") -> str:
    """A well-formed bcrypt hash of ``cost`` (53 characters of salt and hash)."""
    return f"{prefix}$2b${cost:02d}$" + "a" * 53


def _pbkdf2(digest: str, iterations: int) -> str:
    import base64

    size = 32 if digest == "sha256" else 20
    return f"pbkdf2_{digest}${iterations}$salt${base64.b64encode(b'x' * size).decode()}"


async def test_slowest_legacy_hashes_are_one_per_format_at_its_highest_cost(
    users: UserStore,
) -> None:
    """#10 item 6: the store names the most expensive imported hash of each format
    (bcrypt by cost, PBKDF2 by iterations, a 7-digit count above a 6-digit one),
    ignoring argon2 hashes, so start-up can time the slowest failed sign-in."""
    assert await users.slowest_legacy_hashes() == []
    stored = [
        _bcrypt(4),
        _bcrypt(12),
        _bcrypt(10),
        _bcrypt(11, prefix="bcrypt$"),
        _pbkdf2("sha256", 600_000),
        _pbkdf2("sha256", 1_200_000),
        _pbkdf2("sha256", 999_999),
        _pbkdf2("sha1", 10_000),
    ]
    for number, password_hash in enumerate(stored):
        await users.add(make_user(f"u{number}@example.com", password_hash=password_hash))
    await users.add(make_user("argon@example.com"))
    assert sorted(await users.slowest_legacy_hashes()) == sorted(
        [
            _bcrypt(12),
            _bcrypt(11, prefix="bcrypt$"),
            _pbkdf2("sha256", 1_200_000),
            _pbkdf2("sha1", 10_000),
        ]
    )


async def test_only_argon2_hashes_mean_no_legacy_hashes(users: UserStore) -> None:
    """#10 item 6: a store without imported hashes reports none (no extra work at start-up)."""
    await users.add(make_user())
    assert await users.slowest_legacy_hashes() == []


# --- mail (#14): e-mail verification and change -----------------------------------------


async def test_email_verified_is_stored_and_read_back(users: UserStore) -> None:
    """A new account is unverified; set_email_verified sticks (#14)."""
    user = make_user()
    await users.add(user)
    assert (await users.get(user.id)).email_verified is False  # type: ignore[union-attr]
    await users.set_email_verified(user.id, True)
    assert (await users.get(user.id)).email_verified is True  # type: ignore[union-attr]
    with pytest.raises(UserNotFound):
        await users.set_email_verified("missing", True)


async def test_set_email_moves_the_lookup_key_and_refuses_a_taken_address(
    users: UserStore,
) -> None:
    """After set_email the account is found by its new address only; another
    account's address is EmailTaken and changes nothing (#14)."""
    alice, bob = make_user("alice@example.com"), make_user("bob@example.com")
    await users.add(alice)
    await users.add(bob)
    await users.set_email(alice.id, "Alice.New@example.com", verified=True)
    moved = await users.get_by_email("alice.new@example.com")
    assert moved is not None and moved.id == alice.id and moved.email_verified
    assert moved.email == "Alice.New@example.com"
    assert await users.get_by_email("alice@example.com") is None
    with pytest.raises(EmailTaken):
        await users.set_email(alice.id, "BOB@example.com", verified=True)
    still = await users.get(alice.id)
    assert still is not None and still.email == "Alice.New@example.com"
