"""The RefreshStore contract, run against every implementation."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import secrets
import uuid

import pytest

from keyturn.errors import UserNotFound
from keyturn.settings import Settings
from keyturn.stores.factory import open_storage
from keyturn.stores.memory import MemoryStorage
from keyturn.stores.protocols import Storage
from keyturn.stores.records import RefreshFamily, RefreshToken, User

T0 = 1_800_000_000.0


async def add_user(storage: Storage, email: str = "alice@example.com") -> User:
    """Store an account (families reference users by foreign key in SQL)."""
    user = User(
        id=str(uuid.uuid4()),
        email=email,
        password_hash="$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        created_at=T0,
    )
    await storage.users.add(user)
    return user


def make_family(user: User, created_at: float = T0) -> RefreshFamily:
    """A family as RefreshFamilies would build it."""
    return RefreshFamily(
        id=secrets.token_urlsafe(12),
        user_id=user.id,
        client_id=None,
        scope="read",
        created_at=created_at,
        last_used_at=created_at,
        expires_at=created_at + 90 * 86400,
        ip="192.0.2.1",
        user_agent="UA",
    )


def make_token(family: RefreshFamily, issued_at: float = T0, ttl: float = 86400) -> RefreshToken:
    """A token record of ``family``."""
    return RefreshToken(
        token_hash=hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
        family_id=family.id,
        issued_at=issued_at,
        expires_at=issued_at + ttl,
    )


async def test_create_family_then_get_token(storage: Storage) -> None:
    """A stored family and its first token come back as stored."""
    user = await add_user(storage)
    family, token = make_family(user), None
    token = make_token(family)
    await storage.refresh.create_family(family, token)
    assert await storage.refresh.get_token(token.token_hash) == (token, family)
    assert await storage.refresh.get_family(family.id) == family
    assert await storage.refresh.get_token("0" * 64) is None


async def test_create_family_for_unknown_user_fails_in_sql(storage: Storage) -> None:
    """SQL stores refuse a family of a user that does not exist."""
    if isinstance(storage, MemoryStorage):
        pytest.skip("the memory store does not know users")
    family = make_family(User("missing", "x@example.com", "h", T0))
    with pytest.raises(UserNotFound):
        await storage.refresh.create_family(family, make_token(family))


async def test_rotate_marks_used_stores_successor_and_touches_family(storage: Storage) -> None:
    """Rotation sets used_at and the grace fields, inserts the successor, bumps last use."""
    user = await add_user(storage)
    family = make_family(user)
    first = make_token(family)
    await storage.refresh.create_family(family, first)
    successor = make_token(family, issued_at=T0 + 60)
    rotated = await storage.refresh.rotate(
        first.token_hash,
        successor,
        now=T0 + 60,
        grace_until=T0 + 65,
        grace_payload=b"sealed",
        ip="198.51.100.7",
        user_agent="Other",
    )
    assert rotated
    found = await storage.refresh.get_token(first.token_hash)
    assert found is not None
    used, fam = found
    assert used.used_at == T0 + 60 and used.grace_until == T0 + 65
    assert used.grace_payload == b"sealed"
    assert fam.last_used_at == T0 + 60 and fam.ip == "198.51.100.7" and fam.user_agent == "Other"
    assert await storage.refresh.get_token(successor.token_hash) == (successor, fam)


async def test_rotate_twice_fails_the_second_time(storage: Storage) -> None:
    """A used token cannot be rotated again; nothing is written."""
    user = await add_user(storage)
    family = make_family(user)
    first = make_token(family)
    await storage.refresh.create_family(family, first)
    assert await storage.refresh.rotate(
        first.token_hash, make_token(family), now=T0, grace_until=None, grace_payload=None
    )
    late = make_token(family)
    assert not await storage.refresh.rotate(
        first.token_hash, late, now=T0 + 1, grace_until=None, grace_payload=None
    )
    assert await storage.refresh.get_token(late.token_hash) is None


async def test_rotate_unknown_or_revoked_family_fails(storage: Storage) -> None:
    """Unknown tokens and tokens of a revoked family do not rotate."""
    user = await add_user(storage)
    family = make_family(user)
    first = make_token(family)
    await storage.refresh.create_family(family, first)
    assert not await storage.refresh.rotate(
        "f" * 64, make_token(family), now=T0, grace_until=None, grace_payload=None
    )
    await storage.refresh.revoke_family(family.id, T0)
    assert not await storage.refresh.rotate(
        first.token_hash, make_token(family), now=T0, grace_until=None, grace_payload=None
    )


async def test_concurrent_rotations_have_exactly_one_winner(storage: Storage) -> None:
    """Twenty concurrent rotations of one token: exactly one succeeds."""
    user = await add_user(storage)
    family = make_family(user)
    first = make_token(family)
    await storage.refresh.create_family(family, first)
    successors = [make_token(family) for _ in range(20)]
    results = await asyncio.gather(
        *(
            storage.refresh.rotate(
                first.token_hash, s, now=T0, grace_until=None, grace_payload=None
            )
            for s in successors
        )
    )
    assert results.count(True) == 1
    stored = [await storage.refresh.get_token(s.token_hash) for s in successors]
    assert sum(found is not None for found in stored) == 1


@pytest.mark.postgres
async def test_two_engines_on_one_postgres_rotate_once(postgres_database_url: str) -> None:
    """Two SqlStorage instances (two "servers") racing on one token: one rotation."""
    settings = Settings(database_url=postgres_database_url)
    first_instance = await open_storage(settings, migrate=True)
    second_instance = await open_storage(settings, migrate=False)
    try:
        user = await add_user(first_instance)
        family = make_family(user)
        first = make_token(family)
        await first_instance.refresh.create_family(family, first)
        calls = [
            instance.refresh.rotate(
                first.token_hash, make_token(family), now=T0, grace_until=None, grace_payload=None
            )
            for _ in range(10)
            for instance in (first_instance, second_instance)
        ]
        results = await asyncio.gather(*calls)
        assert results.count(True) == 1
    finally:
        await first_instance.close()
        await second_instance.close()


async def test_clear_grace_wipes_the_payload(storage: Storage) -> None:
    """clear_grace forgets the kept response but keeps the used mark."""
    user = await add_user(storage)
    family = make_family(user)
    first = make_token(family)
    await storage.refresh.create_family(family, first)
    await storage.refresh.rotate(
        first.token_hash, make_token(family), now=T0, grace_until=T0 + 5, grace_payload=b"x"
    )
    await storage.refresh.clear_grace(first.token_hash)
    found = await storage.refresh.get_token(first.token_hash)
    assert found is not None and found[0].grace_payload is None and found[0].used_at == T0


async def test_revoke_family_keeps_first_time_and_wipes_payloads(storage: Storage) -> None:
    """revoke_family sets revoked_at once and wipes kept responses; unknown is None."""
    user = await add_user(storage)
    family = make_family(user)
    first = make_token(family)
    await storage.refresh.create_family(family, first)
    await storage.refresh.rotate(
        first.token_hash, make_token(family), now=T0, grace_until=T0 + 5, grace_payload=b"x"
    )
    revoked = await storage.refresh.revoke_family(family.id, T0 + 1)
    assert revoked is not None and revoked.revoked_at == T0 + 1
    again = await storage.refresh.revoke_family(family.id, T0 + 2)
    assert again is not None and again.revoked_at == T0 + 1
    found = await storage.refresh.get_token(first.token_hash)
    assert found is not None and found[0].grace_payload is None
    assert await storage.refresh.revoke_family("nope", T0) is None


async def test_revoke_for_user_returns_only_newly_revoked(storage: Storage) -> None:
    """revoke_for_user revokes the user's live families only, oldest first."""
    alice, bob = await add_user(storage), await add_user(storage, "bob@example.com")
    older, newer = make_family(alice), make_family(alice, created_at=T0 + 10)
    already, other = make_family(alice, created_at=T0 + 20), make_family(bob)
    for family in (older, newer, already, other):
        await storage.refresh.create_family(family, make_token(family))
    await storage.refresh.revoke_family(already.id, T0)
    revoked = await storage.refresh.revoke_for_user(alice.id, T0 + 30)
    assert [f.id for f in revoked] == [older.id, newer.id]
    assert all(f.revoked_at == T0 + 30 for f in revoked)
    bobs = await storage.refresh.get_family(other.id)
    assert bobs is not None and bobs.revoked_at is None
    listed = await storage.refresh.list_families(alice.id)
    assert [f.id for f in listed] == [older.id, newer.id, already.id]


async def test_sweep_deletes_expired_families_and_tokens(storage: Storage) -> None:
    """Sweep drops capped families with their tokens, expired tokens, and old payloads."""
    user = await add_user(storage)
    short = dataclasses.replace(make_family(user), expires_at=T0 + 100)
    long = make_family(user)
    short_token = make_token(short)
    stale, live = make_token(long, ttl=50), make_token(long)
    await storage.refresh.create_family(short, short_token)
    await storage.refresh.create_family(long, stale)
    await storage.refresh.rotate(
        stale.token_hash, live, now=T0, grace_until=T0 + 5, grace_payload=b"x"
    )
    deleted = await storage.refresh.sweep(T0 + 200)
    assert deleted == 3  # the short family, its token, and the expired stale token
    assert await storage.refresh.get_family(short.id) is None
    assert await storage.refresh.get_token(short_token.token_hash) is None
    assert await storage.refresh.get_token(stale.token_hash) is None
    found = await storage.refresh.get_token(live.token_hash)
    assert found is not None


# --- the per-user cap (#10 item 10d) ---------------------------------------------------


async def test_create_family_over_the_cap_revokes_the_oldest(storage: Storage) -> None:
    """With max_per_user, a new family beyond the cap revokes the user's oldest live
    families (kept responses wiped) and returns them; other users are untouched
    (#10 item 10d)."""
    alice, bob = await add_user(storage), await add_user(storage, "bob@example.com")
    bobs = make_family(bob)
    await storage.refresh.create_family(bobs, make_token(bobs))
    families = [make_family(alice, created_at=T0 + i) for i in range(3)]
    first = make_token(families[0])
    for family, token in zip(families, [first, None, None], strict=True):
        created = await storage.refresh.create_family(
            family, token or make_token(family), max_per_user=3
        )
        assert created == []
    await storage.refresh.rotate(
        first.token_hash,
        make_token(families[0]),
        now=T0 + 3,
        grace_until=T0 + 8,
        grace_payload=b"sealed",
    )
    newest = make_family(alice, created_at=T0 + 4)
    evicted = await storage.refresh.create_family(newest, make_token(newest), max_per_user=3)
    assert [f.id for f in evicted] == [families[0].id]
    assert evicted[0].revoked_at == T0 + 4
    stored = await storage.refresh.get_family(families[0].id)
    assert stored is not None and stored.revoked_at == T0 + 4
    found = await storage.refresh.get_token(first.token_hash)
    assert found is not None and found[0].grace_payload is None
    live = [f.id for f in await storage.refresh.list_families(alice.id) if f.revoked_at is None]
    assert live == [families[1].id, families[2].id, newest.id]
    untouched = await storage.refresh.get_family(bobs.id)
    assert untouched is not None and untouched.revoked_at is None


async def test_the_cap_counts_only_live_families(storage: Storage) -> None:
    """Revoked, capped and (with idle_timeout) disused families do not count towards
    the cap and are not revoked again (#10 item 10d)."""
    user = await add_user(storage)
    revoked = make_family(user, created_at=T0)
    capped = dataclasses.replace(make_family(user, created_at=T0 + 1), expires_at=T0 + 50)
    idle = make_family(user, created_at=T0 + 2)
    live = make_family(user, created_at=T0 + 3)
    live_token = make_token(live, issued_at=T0 + 3)
    for family in (revoked, capped, idle):
        await storage.refresh.create_family(family, make_token(family))
    await storage.refresh.create_family(live, live_token)
    await storage.refresh.revoke_family(revoked.id, T0 + 5)
    assert await storage.refresh.rotate(
        live_token.token_hash,
        make_token(live, issued_at=T0 + 90),
        now=T0 + 90,
        grace_until=None,
        grace_payload=None,
    )
    newest = make_family(user, created_at=T0 + 100)
    evicted = await storage.refresh.create_family(
        newest, make_token(newest), max_per_user=2, idle_timeout=60
    )
    assert evicted == []
    tighter = make_family(user, created_at=T0 + 101)
    evicted = await storage.refresh.create_family(
        tighter, make_token(tighter), max_per_user=2, idle_timeout=60
    )
    assert [f.id for f in evicted] == [live.id]
    kept = await storage.refresh.get_family(idle.id)
    assert kept is not None and kept.revoked_at is None


async def test_without_a_cap_create_family_revokes_nothing(storage: Storage) -> None:
    """max_per_user=None (the default) stores the family and revokes nothing
    (#10 item 10d)."""
    user = await add_user(storage)
    for i in range(5):
        family = make_family(user, created_at=T0 + i)
        assert await storage.refresh.create_family(family, make_token(family)) == []
    listed = await storage.refresh.list_families(user.id)
    assert len(listed) == 5 and all(f.revoked_at is None for f in listed)


async def test_concurrent_sign_ins_keep_the_cap(storage: Storage) -> None:
    """Ten families created at once under a cap of three leave exactly three live
    (#10 item 10d)."""
    user = await add_user(storage)
    families = [make_family(user, created_at=T0 + i) for i in range(10)]
    await asyncio.gather(
        *(storage.refresh.create_family(f, make_token(f), max_per_user=3) for f in families)
    )
    listed = await storage.refresh.list_families(user.id)
    assert sum(f.revoked_at is None for f in listed) == 3


async def test_revoke_for_sessions_ends_only_that_sessions_families(storage: Storage) -> None:
    """Families opened from a browser session keep its handle and are revoked with
    it; other sessions' and password-grant families stay live."""
    user = await add_user(storage)
    from_session = dataclasses.replace(make_family(user), session_id="S" * 16)
    other_session = dataclasses.replace(make_family(user, T0 + 1), session_id="T" * 16)
    password = make_family(user, T0 + 2)
    for family in (from_session, other_session, password):
        await storage.refresh.create_family(family, make_token(family))
    assert (await storage.refresh.get_family(from_session.id)) == from_session
    revoked = await storage.refresh.revoke_for_sessions(["S" * 16, "U" * 16], T0 + 10)
    assert [family.id for family in revoked] == [from_session.id]
    assert revoked[0].revoked_at == T0 + 10
    assert (await storage.refresh.revoke_for_sessions(["S" * 16], T0 + 20)) == []
    assert (await storage.refresh.revoke_for_sessions([], T0 + 20)) == []
    for live in (other_session, password):
        family = await storage.refresh.get_family(live.id)
        assert family is not None and family.revoked_at is None


async def test_dpop_bound_family_keeps_its_key(storage: Storage) -> None:
    """A family's DPoP key thumbprint (dpop_jkt) comes back from get_token and
    get_family, so a bound refresh token stays bound on every backend."""
    user = await add_user(storage)
    jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    family = dataclasses.replace(make_family(user), dpop_jkt=jkt)
    token = make_token(family)
    await storage.refresh.create_family(family, token)
    found = await storage.refresh.get_token(token.token_hash)
    assert found is not None and found[1].dpop_jkt == jkt
    stored = await storage.refresh.get_family(family.id)
    assert stored is not None and stored.dpop_jkt == jkt
    unbound = make_family(user, T0 + 1)
    await storage.refresh.create_family(unbound, make_token(unbound))
    assert (await storage.refresh.get_family(unbound.id)).dpop_jkt is None  # type: ignore[union-attr]


async def test_get_token_keeps_the_family_session(storage: Storage) -> None:
    """A family opened from a browser session names it in what get_token returns
    (the SQL store once dropped session_id there), so a rotated family still
    ends with its session."""
    user = await add_user(storage)
    family = dataclasses.replace(make_family(user), session_id="S" * 16)
    token = make_token(family)
    await storage.refresh.create_family(family, token)
    found = await storage.refresh.get_token(token.token_hash)
    assert found is not None and found[1].session_id == "S" * 16
    successor = make_token(family, issued_at=T0 + 1)
    assert await storage.refresh.rotate(
        token.token_hash, successor, now=T0 + 1, grace_until=None, grace_payload=None
    )
    rotated = await storage.refresh.get_token(successor.token_hash)
    assert rotated is not None and rotated[1].session_id == "S" * 16
