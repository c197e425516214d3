"""The OAuth code-flow store contracts (authorization codes, PAR requests,
consents), run against the memory references, SQLite, PostgreSQL and the SQL +
Redis bundle (whose OAuth stores are the SQL ones)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import sqlalchemy as sa
from tests.contracts.wave2_support import T0, add_user, stored_bytes

from keyturn.clock import FrozenClock
from keyturn.oauth.codes import AuthorizationCodes
from keyturn.oauth.par import hash_request_uri
from keyturn.oauth.store import AuthorizationCode, ConsentGrant, PushedRequest
from keyturn.stores.protocols import Storage
from keyturn.stores.sql import SqlStorage
from keyturn.stores.sql.schema import oauth_codes, oauth_consents, users
from keyturn.stores.wave2 import Wave2Stores, wave2_stores

RACERS = 8


def _code(user_id: str, code_hash: str = "h" * 64, grant_id: str = "g1") -> AuthorizationCode:
    return AuthorizationCode(
        code_hash=code_hash,
        grant_id=grant_id,
        client_id="spa",
        user_id=user_id,
        redirect_uri="https://app.example/cb?x=1",
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        scopes=("openid", "profile", "notes:read"),
        session_id="s" * 32,
        auth_time=T0 - 5,
        created_at=T0,
        expires_at=T0 + 60,
        nonce="n-0S6_WzA2Mj",
        amr=("pwd", "otp", "mfa"),
    )


def _par(request_uri_hash: str = "p" * 64) -> PushedRequest:
    params = {"client_id": "spa", "scope": "openid", "state": "é ∆ 1"}
    return PushedRequest(request_uri_hash, "spa", params, T0, T0 + 60)


async def test_code_round_trip_and_duplicate(storage: Storage, wave2: Wave2Stores) -> None:
    """A code comes back with every binding as stored; a second code with the same
    hash is refused with ValueError."""
    code = _code(await add_user(storage, "u1"))
    await wave2.codes.add(code)
    assert await wave2.codes.get(code.code_hash) == code
    assert await wave2.codes.get("missing") is None
    with pytest.raises(ValueError):
        await wave2.codes.add(dataclasses.replace(code, grant_id="g2"))
    bare = dataclasses.replace(code, code_hash="b" * 64, grant_id="g3", nonce=None, amr=())
    await wave2.codes.add(bare)
    assert await wave2.codes.get(bare.code_hash) == bare


async def test_code_is_redeemed_by_exactly_one_racer(storage: Storage, wave2: Wave2Stores) -> None:
    """Of N concurrent redemptions of one code exactly one wins; the code stays,
    marked used, so a later replay is recognised, and only then takes a family."""
    code = _code(await add_user(storage, "u1"))
    await wave2.codes.add(code)
    await wave2.codes.set_family(code.code_hash, "too-early")  # not used yet: no-op
    wins = await asyncio.gather(
        *(wave2.codes.consume(code.code_hash, T0 + 1 + n) for n in range(RACERS))
    )
    assert wins.count(True) == 1
    used = await wave2.codes.get(code.code_hash)
    assert used is not None and used.used_at is not None and used.family_id is None
    await wave2.codes.set_family(code.code_hash, "fam-1")
    assert await wave2.codes.get(code.code_hash) == dataclasses.replace(used, family_id="fam-1")
    assert not await wave2.codes.consume(code.code_hash, T0 + 2)
    assert not await wave2.codes.consume("unknown", T0)


async def test_code_purge_keeps_codes_until_they_expire(
    storage: Storage, wave2: Wave2Stores
) -> None:
    """Purge deletes codes that expired before the cut-off, used or not, and keeps the rest."""
    user = await add_user(storage, "u1")
    old, fresh = _code(user, "o" * 64, "g-old"), _code(user, "f" * 64, "g-new")
    await wave2.codes.add(old)
    await wave2.codes.add(dataclasses.replace(fresh, expires_at=T0 + 3600))
    await wave2.codes.consume(old.code_hash, T0 + 1)
    assert await wave2.codes.purge(T0 + 61) == 1
    assert await wave2.codes.get(old.code_hash) is None
    assert await wave2.codes.get(fresh.code_hash) is not None


async def test_pushed_request_round_trip_and_single_use(wave2: Wave2Stores) -> None:
    """A pushed request comes back with its params; one racer consumes it; purge
    removes expired ones; a duplicate hash is refused."""
    request = _par()
    await wave2.pushed_requests.add(request)
    got = await wave2.pushed_requests.get(request.request_uri_hash)
    assert got is not None and dict(got.params) == dict(request.params)
    assert (got.client_id, got.created_at, got.expires_at, got.used_at) == (
        "spa",
        T0,
        T0 + 60,
        None,
    )
    with pytest.raises(ValueError):
        await wave2.pushed_requests.add(request)
    wins = await asyncio.gather(
        *(wave2.pushed_requests.consume(request.request_uri_hash, T0 + 1) for _ in range(RACERS))
    )
    assert wins.count(True) == 1
    used = await wave2.pushed_requests.get(request.request_uri_hash)
    assert used is not None and used.used_at == T0 + 1
    await wave2.pushed_requests.add(dataclasses.replace(_par("q" * 64), expires_at=T0 + 600))
    assert await wave2.pushed_requests.purge(T0 + 61) == 1
    assert await wave2.pushed_requests.get(request.request_uri_hash) is None
    assert await wave2.pushed_requests.get("q" * 64) is not None


async def test_consents_put_get_list_and_delete(storage: Storage, wave2: Wave2Stores) -> None:
    """A grant is created, replaced, listed oldest first, and removed per user or per client."""
    alice, bob = await add_user(storage, "alice"), await add_user(storage, "bob")
    notes = ConsentGrant(alice, "notes", frozenset({"openid"}), T0, T0)
    await wave2.consents.put(notes)
    widened = dataclasses.replace(
        notes, scopes=frozenset({"openid", "notes:read"}), updated_at=T0 + 9
    )
    await wave2.consents.put(widened)
    mail = ConsentGrant(alice, "mail", frozenset(), T0 + 5, T0 + 5)
    await wave2.consents.put(mail)
    await wave2.consents.put(ConsentGrant(bob, "notes", frozenset({"openid"}), T0, T0))
    assert await wave2.consents.get(alice, "notes") == widened
    assert await wave2.consents.get(alice, "none") is None
    assert await wave2.consents.list_for_user(alice) == [widened, mail]
    assert await wave2.consents.delete(alice, "mail") == mail
    assert await wave2.consents.delete(alice, "mail") is None
    assert await wave2.consents.delete_for_client("notes") == 2
    assert await wave2.consents.list_for_user(alice) == []
    assert await wave2.consents.list_for_user(bob) == []


async def test_codes_and_request_uris_are_stored_hashed(
    storage: Storage, wave2: Wave2Stores
) -> None:
    """Through the real code issuer (and the PAR hash): neither the code nor the
    request_uri is anywhere in the stores; their hashes are."""
    user = await add_user(storage, "u1")
    issued = await AuthorizationCodes(wave2.codes, FrozenClock(T0)).issue(
        client_id="spa",
        user_id=user,
        redirect_uri="https://app.example/cb",
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        scopes=("openid",),
        session_id="s" * 32,
        auth_time=T0,
    )
    request_uri = "urn:ietf:params:oauth:request_uri:cGFyLXNlY3JldC1oYW5kbGU"
    await wave2.pushed_requests.add(
        dataclasses.replace(_par(), request_uri_hash=hash_request_uri(request_uri))
    )
    held = await stored_bytes(storage)
    assert issued.code.encode() not in held and request_uri.encode() not in held
    assert issued.record.code_hash.encode() in held
    assert hash_request_uri(request_uri).encode() in held


async def test_user_delete_cascades_to_codes_and_consents(sql_storage: SqlStorage) -> None:
    """Deleting a user row deletes their codes and consents; another user's stay."""
    stores = wave2_stores(sql_storage)
    for user in ("gone", "kept"):
        await add_user(sql_storage, user)
        await stores.codes.add(_code(user, user.ljust(64, "h"), f"g-{user}"))
        await stores.consents.put(ConsentGrant(user, "spa", frozenset({"openid"}), T0, T0))
    async with sql_storage.engine.begin() as connection:
        await connection.execute(users.delete().where(users.c.id == "gone"))
    async with sql_storage.engine.connect() as connection:
        for table in (oauth_codes, oauth_consents):
            owners = (await connection.execute(sa.select(table.c.user_id))).scalars().all()
            assert owners == ["kept"], table.name
    assert await stores.consents.get("gone", "spa") is None
