"""The KeyStore contract, run against memory, SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest

from keyturn.errors import AlreadyExists
from keyturn.keys.encryption import KeyEncryptor, generate_kek
from keyturn.keys.records import SigningKey, generate_key
from keyturn.stores.protocols import KeyStore, Storage

T0 = 1_800_000_000.0


@pytest.fixture
def keys(storage: Storage) -> KeyStore:
    """The key store of each storage kind."""
    return storage.keys


@pytest.fixture(scope="module")
def encryptor() -> KeyEncryptor:
    """Seals private keys the way the key manager does before storing them."""
    return KeyEncryptor.from_text(generate_kek())


def sealed(encryptor: KeyEncryptor, alg: str = "ES256", created_at: float = T0) -> SigningKey:
    """A freshly generated key, its private part sealed as stores receive it."""
    return encryptor.seal(generate_key(alg, now=created_at))  # type: ignore[arg-type]


async def test_added_key_comes_back_unchanged(keys: KeyStore, encryptor: KeyEncryptor) -> None:
    """Every field, sealed private key bytes included, survives a round trip."""
    for alg in ("EdDSA", "ES256", "HS256"):
        key = sealed(encryptor, alg)
        await keys.add(key)
        (stored,) = [k for k in await keys.list() if k.kid == key.kid]
        assert stored == key
        assert encryptor.unseal(stored).private_key == encryptor.unseal(key).private_key


async def test_duplicate_kid_is_refused(keys: KeyStore, encryptor: KeyEncryptor) -> None:
    """Adding a second key with an existing kid raises AlreadyExists (a keyturn
    error, the same on every store) and keeps the first."""
    key = sealed(encryptor)
    await keys.add(key)
    with pytest.raises(AlreadyExists, match="already exists"):
        await keys.add(dataclasses.replace(key, created_at=T0 + 5))
    assert [k.created_at for k in await keys.list()] == [T0]


async def test_list_is_newest_first(keys: KeyStore, encryptor: KeyEncryptor) -> None:
    """Keys are listed by created_at, newest first."""
    created = [sealed(encryptor, created_at=T0 + offset) for offset in (10, 0, 20)]
    for key in created:
        await keys.add(key)
    assert [k.created_at for k in await keys.list()] == [T0 + 20, T0 + 10, T0]


async def test_empty_store_lists_nothing(keys: KeyStore) -> None:
    """A fresh store has no keys."""
    assert await keys.list() == []


async def test_retire_sets_the_time_once(keys: KeyStore, encryptor: KeyEncryptor) -> None:
    """retire() sets retired_at; a later retire keeps the earlier time, an earlier one wins."""
    key = sealed(encryptor)
    await keys.add(key)
    await keys.retire(key.kid, T0 + 100)
    await keys.retire(key.kid, T0 + 200)
    assert (await keys.list())[0].retired_at == T0 + 100
    await keys.retire(key.kid, T0 + 50)
    assert (await keys.list())[0].retired_at == T0 + 50


async def test_retiring_an_unknown_key_is_harmless(keys: KeyStore) -> None:
    """retire() of a kid that is not stored does nothing and raises nothing."""
    await keys.retire("no-such-kid", T0)
    assert await keys.list() == []


async def test_delete_expired_removes_only_keys_retired_before(
    keys: KeyStore, encryptor: KeyEncryptor
) -> None:
    """Only keys retired before the cut-off go; active and recently retired keys stay."""
    old, recent, active = (sealed(encryptor, created_at=T0 + i) for i in range(3))
    for key in (old, recent, active):
        await keys.add(key)
    await keys.retire(old.kid, T0 + 10)
    await keys.retire(recent.kid, T0 + 1000)
    assert await keys.delete_expired(T0 + 500) == 1
    assert {k.kid for k in await keys.list()} == {recent.kid, active.kid}
    assert await keys.delete_expired(T0 + 500) == 0
