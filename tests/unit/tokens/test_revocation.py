"""The revocation replica: local effect at once, other instances within the
staleness bound, fail closed when stale, cut-off granularity, expiry of entries."""

from __future__ import annotations

import asyncio
import math

import pytest

from keyturn.clock import FrozenClock
from keyturn.errors import InvalidToken, StoreUnavailable
from keyturn.settings import Settings
from keyturn.stores.memory.tokens import MemoryRevocationStore
from keyturn.stores.records import Revocation
from keyturn.tokens.claims import AccessTokenClaims
from keyturn.tokens.revocation import RevocationReplica

SETTINGS = Settings(staleness_bound=2.0, access_token_ttl=900, clock_leeway=5)


def claims(
    clock: FrozenClock, *, jti: str = "j1", sid: str = "s1", sub: str = "u1", iat: int | None = None
) -> AccessTokenClaims:
    """Claims of a token issued now (or at ``iat``)."""
    issued = int(clock.now()) if iat is None else iat
    return AccessTokenClaims(
        iss="https://issuer",
        sub=sub,
        aud="https://issuer",
        exp=issued + 900,
        iat=issued,
        jti=jti,
        sid=sid,
    )


class BrokenStore(MemoryRevocationStore):
    """A revocation store that can be switched to fail."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def changes(self, *, after_seq: int, since: float, now: float) -> list[Revocation]:
        if self.down:
            raise ConnectionError("database went away")
        return await super().changes(after_seq=after_seq, since=since, now=now)

    async def add(self, entry: Revocation) -> Revocation:
        if self.down:
            raise StoreUnavailable()
        return await super().add(entry)


@pytest.fixture
def clock() -> FrozenClock:
    """A frozen clock at a whole second."""
    return FrozenClock(1_800_000_000.0)


async def test_local_revocations_apply_at_once(clock: FrozenClock) -> None:
    """The instance that revokes refuses the token before any sync."""
    replica = RevocationReplica(MemoryRevocationStore(), SETTINGS, clock)
    await replica.start()
    token = claims(clock)
    replica.check(token)
    await replica.revoke_jti(token.jti, token.exp)
    with pytest.raises(InvalidToken) as refused:
        replica.check(token)
    assert refused.value.reason == "revoked"
    other = claims(clock, jti="j2", sid="s2")
    await replica.revoke_sids(["s2"])
    with pytest.raises(InvalidToken):
        replica.check(other)


async def test_another_instance_sees_a_revocation_within_the_bound(clock: FrozenClock) -> None:
    """Two replicas over one store: B refuses what A revoked once the bound passes."""
    store = MemoryRevocationStore()
    a, b = RevocationReplica(store, SETTINGS, clock), RevocationReplica(store, SETTINGS, clock)
    await a.start()
    await b.start()
    token = claims(clock)
    await a.revoke_sids([token.sid])
    await b.ensure_fresh()
    b.check(token)  # still inside b's staleness bound: not yet seen
    clock.advance(SETTINGS.staleness_bound)
    await b.ensure_fresh()
    with pytest.raises(InvalidToken):
        b.check(token)


async def test_replica_syncs_ahead_in_the_background(clock: FrozenClock) -> None:
    """Past half the bound a check returns at once and starts a background sync, so
    the next check sees another instance's revocation without having waited."""
    store = MemoryRevocationStore()
    a, b = RevocationReplica(store, SETTINGS, clock), RevocationReplica(store, SETTINGS, clock)
    await a.start()
    await b.start()
    token = claims(clock)
    await a.revoke_sids([token.sid])
    clock.advance(SETTINGS.staleness_bound * 0.6)
    await b.ensure_fresh()  # returns without waiting; the sync runs behind it
    for _ in range(5):
        await asyncio.sleep(0)
    with pytest.raises(InvalidToken):
        b.check(token)


async def test_late_committed_entry_is_caught_by_the_overlap(clock: FrozenClock) -> None:
    """An entry with a lower seq appearing after a sync is still picked up (time overlap)."""
    store = MemoryRevocationStore()
    replica = RevocationReplica(store, SETTINGS, clock)
    late = await store.add(Revocation("jti", "late", clock.now(), clock.now() + 900))
    await store.add(Revocation("jti", "early", clock.now(), clock.now() + 900))
    store._entries.remove(late)  # not yet "committed" when the replica loads
    await replica.start()
    store._entries.insert(0, late)
    clock.advance(SETTINGS.staleness_bound)
    await replica.ensure_fresh()
    with pytest.raises(InvalidToken):
        replica.check(claims(clock, jti="late"))


async def test_stale_replica_with_a_broken_store_fails_closed(clock: FrozenClock) -> None:
    """Past the bound, an unreachable store means StoreUnavailable, never accept."""
    store = BrokenStore()
    replica = RevocationReplica(store, SETTINGS, clock)
    await replica.start()
    store.down = True
    clock.advance(SETTINGS.staleness_bound / 2)
    await replica.ensure_fresh()  # fresh enough: no store call needed
    clock.advance(SETTINGS.staleness_bound)
    with pytest.raises(StoreUnavailable):
        await replica.ensure_fresh()
    store.down = False
    await replica.ensure_fresh()
    replica.check(claims(clock))


async def test_never_synced_replica_fails_closed(clock: FrozenClock) -> None:
    """A replica that could not load at start refuses until it syncs."""
    store = BrokenStore()
    store.down = True
    replica = RevocationReplica(store, SETTINGS, clock)
    with pytest.raises(StoreUnavailable):
        await replica.start()
    with pytest.raises(StoreUnavailable):
        await replica.ensure_fresh()


async def test_revocation_with_a_broken_store_still_applies_locally(clock: FrozenClock) -> None:
    """Recording fails loudly, but this instance refuses the token anyway."""
    store = BrokenStore()
    replica = RevocationReplica(store, SETTINGS, clock)
    await replica.start()
    store.down = True
    token = claims(clock)
    with pytest.raises(StoreUnavailable):
        await replica.revoke_jti(token.jti, token.exp)
    with pytest.raises(InvalidToken):
        replica.check(token)


async def test_user_cutoff_has_one_second_granularity(clock: FrozenClock) -> None:
    """The cut-off refuses tokens from earlier seconds; a token issued later in the same
    second survives (fresh sign-ins work at once), as documented."""
    replica = RevocationReplica(MemoryRevocationStore(), SETTINGS, clock)
    await replica.start()
    before = claims(clock, jti="old", sid="a")  # iat = second S
    clock.advance(1.5)  # cut-off at S + 1.5
    await replica.revoke_user("u1")
    with pytest.raises(InvalidToken):
        replica.check(before)
    same_second = claims(clock, jti="new", sid="b")  # iat = S + 1 (same second)
    replica.check(same_second)
    replica.check(claims(clock, sub="u2", iat=int(clock.now()) - 10))  # other users untouched
    assert replica.cutoff("u1") == clock.now()


async def test_entries_are_forgotten_after_their_lifetime(clock: FrozenClock) -> None:
    """A sid entry lives access_token_ttl + leeway; after that it is purged everywhere."""
    store = MemoryRevocationStore()
    replica = RevocationReplica(store, SETTINGS, clock)
    await replica.start()
    await replica.revoke_sids(["s1"])
    assert replica.is_sid_revoked("s1")
    clock.advance(SETTINGS.access_token_ttl + SETTINGS.clock_leeway)
    await replica.ensure_fresh()
    assert not replica.is_sid_revoked("s1")
    assert await replica.sweep() == 1
    assert await store.changes(after_seq=0, since=math.inf, now=clock.now()) == []


async def test_jti_entry_lives_until_the_token_expires(clock: FrozenClock) -> None:
    """SEC-62: a denylisted jti is kept at least until the token's exp."""
    store = MemoryRevocationStore()
    replica = RevocationReplica(store, SETTINGS, clock)
    token = claims(clock)
    await replica.revoke_jti(token.jti, token.exp)
    [entry] = await store.changes(after_seq=0, since=math.inf, now=clock.now())
    assert entry.kind == "jti" and entry.expires_at >= token.exp
