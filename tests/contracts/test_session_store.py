"""The SessionStore contract, run against every implementation."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import secrets
import uuid

import pytest

from keyturn.errors import StoreUnavailable
from keyturn.stores.protocols import SessionStore, Storage
from keyturn.stores.records import Session, User
from keyturn.stores.sql import SqlStorage, create_engine_for

try:
    from services import free_port
except ImportError:  # pragma: no cover - ``tests`` imported as a package
    from tests.services import free_port

T0 = 1_800_000_000.0


async def add_user(storage: Storage, email: str = "alice@example.com") -> User:
    """Store an account (sessions reference users by foreign key in SQL)."""
    user = User(
        id=str(uuid.uuid4()),
        email=email,
        password_hash="$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        created_at=T0,
    )
    await storage.users.add(user)
    return user


def make_session(user: User, created_at: float = T0, **changes: object) -> Session:
    """A session record as the manager would build it."""
    session = Session(
        id_hash=hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
        handle=secrets.token_urlsafe(12),
        user_id=user.id,
        created_at=created_at,
        last_seen_at=created_at,
        idle_timeout=1800,
        expires_at=created_at + 12 * 3600,
        auth_time=created_at,
    )
    return dataclasses.replace(session, **changes)  # type: ignore[arg-type]


@pytest.fixture
def sessions(storage: Storage) -> SessionStore:
    """The session store of each storage kind."""
    return storage.sessions


@pytest.fixture
async def alice(storage: Storage) -> User:
    """One stored account to hang sessions on."""
    return await add_user(storage)


async def test_create_then_get_returns_equal_record(sessions: SessionStore, alice: User) -> None:
    """A stored session comes back field for field, by hash and by handle."""
    session = make_session(
        alice,
        created_at=T0 + 0.123456,
        remember=True,
        ip="2001:db8::1",
        user_agent="Mozilla/5.0 ünïcødé",
    )
    assert await sessions.create(session, max_per_user=10) == []
    assert await sessions.get(session.id_hash) == session
    assert await sessions.get_by_handle(session.handle) == session


async def test_amr_survives_the_store(sessions: SessionStore, alice: User) -> None:
    """How the user signed in (amr, #15) comes back as stored, in order; the
    default is a password sign-in."""
    multi = make_session(alice, amr=("pwd", "otp", "mfa"))
    plain = make_session(alice, created_at=T0 + 1)
    await sessions.create(multi, max_per_user=10)
    await sessions.create(plain, max_per_user=10)
    assert (await sessions.get(multi.id_hash)) == multi
    stored = await sessions.get(plain.id_hash)
    assert stored is not None and stored.amr == ("pwd",)


async def test_unknown_hash_and_handle_are_none(sessions: SessionStore) -> None:
    """Looking up what was never stored gives None, not an error."""
    assert await sessions.get("0" * 64) is None
    assert await sessions.get_by_handle("nope") is None


async def test_get_returns_expired_sessions(sessions: SessionStore, alice: User) -> None:
    """The store keeps expired records until swept; the caller decides."""
    session = make_session(alice, created_at=T0 - 86_400)
    await sessions.create(session, max_per_user=10)
    assert await sessions.get(session.id_hash) == session


async def test_touch_only_moves_forward(sessions: SessionStore, alice: User) -> None:
    """touch() raises last_seen_at and never lowers it."""
    session = make_session(alice)
    await sessions.create(session, max_per_user=10)
    await sessions.touch(session.id_hash, T0 + 100)
    await sessions.touch(session.id_hash, T0 + 50)
    stored = await sessions.get(session.id_hash)
    assert stored == dataclasses.replace(session, last_seen_at=T0 + 100)


async def test_touch_of_missing_session_is_not_an_error(sessions: SessionStore) -> None:
    """Touching a session revoked a moment ago is silently nothing: no error, and
    no session brought back to life."""
    await sessions.touch("f" * 64, T0)
    assert await sessions.get("f" * 64) is None
    assert await sessions.list_all() == []


async def test_delete_returns_what_it_deleted(sessions: SessionStore, alice: User) -> None:
    """delete() returns the record once, then None; the handle is gone too."""
    session = make_session(alice)
    await sessions.create(session, max_per_user=10)
    assert await sessions.delete(session.id_hash) == session
    assert await sessions.delete(session.id_hash) is None
    assert await sessions.get(session.id_hash) is None
    assert await sessions.get_by_handle(session.handle) is None


async def test_list_for_user_is_oldest_first_and_per_user(
    storage: Storage, sessions: SessionStore, alice: User
) -> None:
    """list_for_user() gives only that user's sessions, oldest first, expired included."""
    bob = await add_user(storage, "bob@example.com")
    late = make_session(alice, T0 + 20)
    early = make_session(alice, T0 - 86_400)  # long expired
    middle = make_session(alice, T0 + 10)
    for session in (late, early, middle, make_session(bob)):
        await sessions.create(session, max_per_user=10)
    assert await sessions.list_for_user(alice.id) == [early, middle, late]
    assert await sessions.list_for_user("nobody") == []


async def test_list_all_spans_users_oldest_first(
    storage: Storage, sessions: SessionStore, alice: User
) -> None:
    """list_all() gives every user's sessions in one age-ordered list (operator view)."""
    bob = await add_user(storage, "bob@example.com")
    bobs = make_session(bob, T0 + 5)
    alices = make_session(alice, T0)
    for session in (bobs, alices):
        await sessions.create(session, max_per_user=10)
    assert await sessions.list_all() == [alices, bobs]


async def test_delete_for_user_keeps_one_and_spares_others(
    storage: Storage, sessions: SessionStore, alice: User
) -> None:
    """delete_for_user() ends every session of one user except the kept one."""
    bob = await add_user(storage, "bob@example.com")
    first, second, third = (make_session(alice, T0 + i) for i in range(3))
    bobs = make_session(bob)
    for session in (third, first, second, bobs):
        await sessions.create(session, max_per_user=10)
    deleted = await sessions.delete_for_user(alice.id, keep_id_hash=second.id_hash)
    assert deleted == [first, third]
    assert await sessions.list_for_user(alice.id) == [second]
    assert await sessions.delete_for_user(alice.id) == [second]
    assert await sessions.list_for_user(bob.id) == [bobs]


async def test_create_over_the_cap_evicts_the_oldest(sessions: SessionStore, alice: User) -> None:
    """With max_per_user=2, a third sign-in evicts the oldest and returns it."""
    first, second, third = (make_session(alice, T0 + i) for i in range(3))
    assert await sessions.create(first, max_per_user=2) == []
    assert await sessions.create(second, max_per_user=2) == []
    assert await sessions.create(third, max_per_user=2) == [first]
    assert await sessions.list_for_user(alice.id) == [second, third]


async def test_lowering_the_cap_evicts_several(sessions: SessionStore, alice: User) -> None:
    """A create under a smaller cap evicts every older session beyond it, oldest first."""
    older = [make_session(alice, T0 + i) for i in range(4)]
    for session in older:
        await sessions.create(session, max_per_user=10)
    newest = make_session(alice, T0 + 10)
    assert await sessions.create(newest, max_per_user=2) == older[:3]
    assert await sessions.list_for_user(alice.id) == [older[3], newest]


async def test_cap_ignores_expired_sessions(sessions: SessionStore, alice: User) -> None:
    """Expired sessions do not count towards the cap and are never 'evicted'."""
    stale = make_session(alice, T0 - 86_400)
    live = make_session(alice, T0)
    await sessions.create(stale, max_per_user=10)
    await sessions.create(live, max_per_user=10)
    newest = make_session(alice, T0 + 1)
    assert await sessions.create(newest, max_per_user=2) == []


async def test_cap_is_per_user(storage: Storage, sessions: SessionStore, alice: User) -> None:
    """Another user's sessions never count towards, or get evicted by, this cap."""
    bob = await add_user(storage, "bob@example.com")
    bobs = make_session(bob, T0 - 1)
    await sessions.create(bobs, max_per_user=1)
    assert await sessions.create(make_session(alice), max_per_user=1) == []
    assert await sessions.get(bobs.id_hash) == bobs


async def test_concurrent_creates_respect_the_cap(sessions: SessionStore, alice: User) -> None:
    """Racing sign-ins of one user never leave more than max_per_user live sessions."""
    batch = [make_session(alice, T0 + i / 100) for i in range(8)]
    await asyncio.gather(*(sessions.create(s, max_per_user=3) for s in batch))
    assert len(await sessions.list_for_user(alice.id)) == 3


async def test_sweep_deletes_idle_and_absolutely_expired(
    sessions: SessionStore, alice: User
) -> None:
    """sweep() removes sessions past either limit and counts them."""
    live = make_session(alice, T0)
    idle = make_session(alice, T0 - 1801, expires_at=T0 + 3600)
    ancient = make_session(alice, T0 - 100, idle_timeout=10**6, expires_at=T0)
    for session in (live, idle, ancient):
        await sessions.create(session, max_per_user=10)
    assert await sessions.sweep(T0) == 2
    assert await sessions.list_for_user(alice.id) == [live]
    assert await sessions.sweep(T0) == 0


async def test_touch_keeps_a_session_from_the_idle_sweep(
    sessions: SessionStore, alice: User
) -> None:
    """A touched session is judged idle from its new last_seen_at."""
    session = make_session(alice, T0)
    await sessions.create(session, max_per_user=10)
    await sessions.touch(session.id_hash, T0 + 1000)
    assert await sessions.sweep(T0 + 2000) == 0
    assert await sessions.sweep(T0 + 2800) == 1


def test_is_expired_covers_both_limits() -> None:
    """Session.is_expired is true at the idle limit and at the absolute limit."""
    user = User(id="u", email="a@x.io", password_hash="h", created_at=T0)
    session = make_session(user, T0, idle_timeout=10, expires_at=T0 + 15)
    assert not session.is_expired(T0 + 9.9)
    assert session.is_expired(T0 + 10)
    touched = dataclasses.replace(session, last_seen_at=T0 + 9)
    assert not touched.is_expired(T0 + 14.9)
    assert touched.is_expired(T0 + 15)


# --- SQL specifics -----------------------------------------------------------------------


@pytest.fixture
def sql_storage(storage: Storage) -> SqlStorage:
    """Only the SQL kinds (SQLite, PostgreSQL)."""
    if not isinstance(storage, SqlStorage):
        pytest.skip("SQL only")
    return storage


async def test_sql_create_for_unknown_user_raises(sql_storage: SqlStorage) -> None:
    """The users foreign key refuses a session of an account that does not exist."""
    from keyturn.errors import UserNotFound

    ghost = User(id=str(uuid.uuid4()), email="ghost@x.io", password_hash="h", created_at=T0)
    with pytest.raises(UserNotFound):
        await sql_storage.sessions.create(make_session(ghost), max_per_user=10)


async def test_sql_deleting_a_user_cascades(sql_storage: SqlStorage) -> None:
    """Removing an account row removes its sessions (ON DELETE CASCADE)."""
    import sqlalchemy as sa

    from keyturn.stores.sql import users

    user = await add_user(sql_storage)
    session = make_session(user)
    await sql_storage.sessions.create(session, max_per_user=10)
    async with sql_storage.engine.begin() as connection:
        await connection.execute(sa.delete(users).where(users.c.id == user.id))
    assert await sql_storage.sessions.get(session.id_hash) is None


async def test_sql_session_store_on_unreachable_postgres_is_unavailable() -> None:
    """Every session operation against a dead database fails closed."""
    pytest.importorskip("asyncpg")
    url = f"postgresql+asyncpg://keyturn:s3cret-pw@127.0.0.1:{free_port()}/keyturn"
    storage = SqlStorage(create_engine_for(url))
    user = User(id="u", email="a@x.io", password_hash="h", created_at=T0)
    try:
        with pytest.raises(StoreUnavailable):
            await storage.sessions.get("0" * 64)
        with pytest.raises(StoreUnavailable):
            await storage.sessions.create(make_session(user), max_per_user=10)
        with pytest.raises(StoreUnavailable):
            await storage.sessions.delete_for_user("u")
    finally:
        await storage.close()
