"""Refresh families in isolation: token format and hashing, sealed grace payloads,
rotation without grace, and failures that must not consume a token."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from keyturn.clock import FrozenClock
from keyturn.errors import InvalidGrant
from keyturn.keys.encryption import KeyEncryptor, generate_kek
from keyturn.settings import Settings
from keyturn.stores.memory.tokens import MemoryRefreshStore, MemoryRevocationStore
from keyturn.stores.records import RefreshFamily
from keyturn.tokens.refresh import (
    RefreshFamilies,
    RefreshReuse,
    hash_refresh_token,
    looks_like_refresh_token,
)
from keyturn.tokens.revocation import RevocationReplica


def make_families(**overrides: Any) -> tuple[RefreshFamilies, MemoryRefreshStore, FrozenClock]:
    """RefreshFamilies over memory stores and a frozen clock."""
    settings = Settings(**overrides)
    clock = FrozenClock()
    store = MemoryRefreshStore()
    revocations = RevocationReplica(MemoryRevocationStore(), settings, clock)
    encryptor = KeyEncryptor.from_text(generate_kek())
    return RefreshFamilies(store, revocations, encryptor, settings, clock), store, clock


async def respond(family: RefreshFamily, new_refresh: str) -> dict[str, Any]:
    """A stand-in response: the new refresh token and the family."""
    return {"refresh_token": new_refresh, "family": family.id}


async def start(families: RefreshFamilies) -> str:
    """Open a family and return its first refresh token."""
    issued = await families.start("u1", client_id=None, scope="", ip="192.0.2.1", user_agent="UA")
    return issued.refresh_token


async def test_tokens_are_prefixed_unique_and_stored_hashed() -> None:
    """1,000 tokens: all distinct, ktr_-prefixed, and the store holds only hashes."""
    families, store, _ = make_families()
    tokens = [await start(families) for _ in range(1000)]
    assert len(set(tokens)) == 1000
    assert all(looks_like_refresh_token(t) and t.count(".") == 0 for t in tokens)
    stored = set(store._tokens)
    assert stored == {hash_refresh_token(t) for t in tokens}
    assert not stored & set(tokens)


async def test_one_changed_character_is_invalid_grant() -> None:
    """A token with one character changed is unknown."""
    families, _, _ = make_families()
    token = await start(families)
    changed = token[:10] + ("x" if token[10] != "x" else "y") + token[11:]
    with pytest.raises(InvalidGrant):
        await families.rotate(changed, respond)


async def test_grace_payload_is_sealed_and_wiped_after_the_window() -> None:
    """The kept successor response is encrypted at rest and swept after the window."""
    families, store, clock = make_families(refresh_grace=5)
    token = await start(families)
    rotation = await families.rotate(token, respond)
    kept = store._tokens[hash_refresh_token(token)].grace_payload
    assert kept is not None
    assert rotation.response["refresh_token"].encode() not in kept
    clock.advance(5)
    await families.sweep()
    assert store._tokens[hash_refresh_token(token)].grace_payload is None


async def test_failing_response_does_not_consume_the_token() -> None:
    """If building the response fails (say, a disabled user), nothing is rotated."""
    families, _, _ = make_families()
    token = await start(families)

    async def refuse(family: RefreshFamily, new_refresh: str) -> dict[str, Any]:
        raise InvalidGrant()

    with pytest.raises(InvalidGrant):
        await families.rotate(token, refuse)
    rotation = await families.rotate(token, respond)
    assert not rotation.replayed


async def test_without_grace_parallel_refreshes_have_one_winner() -> None:
    """refresh_grace=0: exactly one of four parallel refreshes succeeds (SEC-57); the
    others are invalid_grant (a repeat after a finished rotation counts as reuse)."""
    families, _, _ = make_families(refresh_grace=0)
    token = await start(families)
    results = await asyncio.gather(
        *(families.rotate(token, respond) for _ in range(4)), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, InvalidGrant) for r in results if isinstance(r, BaseException))


async def test_reuse_after_the_window_revokes_the_family_and_its_sid() -> None:
    """A replay after the window raises RefreshReuse; the family and sid are revoked."""
    families, store, clock = make_families(refresh_grace=2)
    token = await start(families)
    rotation = await families.rotate(token, respond)
    clock.advance(2)
    with pytest.raises(RefreshReuse) as reuse:
        await families.rotate(token, respond)
    family_id = reuse.value.family.id
    assert family_id == rotation.family.id
    stored = await store.get_family(family_id)
    assert stored is not None and stored.revoked_at is not None
    assert families.revocations.is_sid_revoked(family_id)
    with pytest.raises(InvalidGrant):
        await families.rotate(rotation.response["refresh_token"], respond)


async def test_a_payload_sealed_under_another_kek_is_not_replayed() -> None:
    """A kept response that no longer decrypts is invalid_grant, never a crash."""
    families, _, _ = make_families(refresh_grace=5)
    token = await start(families)
    await families.rotate(token, respond)
    families.encryptor = KeyEncryptor.from_text(generate_kek())
    with pytest.raises(InvalidGrant):
        await families.rotate(token, respond)
