"""The ClientStore contract, run against every implementation."""

from __future__ import annotations

import pytest

from keyturn.errors import AlreadyExists
from keyturn.stores.protocols import Storage
from keyturn.stores.records import WAVE1_GRANT_TYPES, Client

T0 = 1_800_000_000.0


async def test_add_get_and_list(storage: Storage) -> None:
    """Stored clients come back by id and in creation order."""
    public = Client("c-public", "SPA", False, T0)
    confidential = Client("c-conf", "Gateway", True, T0 + 1, secret_hash="a" * 64)
    await storage.clients.add(confidential)
    await storage.clients.add(public)
    assert await storage.clients.get("c-conf") == confidential
    assert await storage.clients.get("missing") is None
    assert await storage.clients.list() == [public, confidential]


async def test_duplicate_id_is_refused(storage: Storage) -> None:
    """Two clients cannot share an id."""
    await storage.clients.add(Client("same", "one", False, T0))
    with pytest.raises(AlreadyExists, match="already exists"):
        await storage.clients.add(Client("same", "two", False, T0))


async def test_allowed_scopes_round_trip(storage: Storage) -> None:
    """A client's scope allowlist comes back as stored, in order; None (a client
    from before per-client scopes) and an empty allowlist stay distinct
    (#10 item 10c)."""
    scoped = Client("c-scoped", "App", False, T0, registered_scopes=("openid", "notes:read"))
    none = Client("c-none", "Wave 1", False, T0 + 1)
    empty = Client("c-empty", "Nothing", True, T0 + 2, secret_hash="b" * 64, registered_scopes=())
    for client in (scoped, none, empty):
        await storage.clients.add(client)
    assert await storage.clients.get("c-scoped") == scoped
    found = await storage.clients.get("c-none")
    assert found is not None and found.registered_scopes is None
    found = await storage.clients.get("c-empty")
    assert found is not None and found.registered_scopes == ()
    assert [c.registered_scopes for c in await storage.clients.list()] == [
        ("openid", "notes:read"),
        None,
        (),
    ]


FULL = Client(
    "c-full",
    "Notes web",
    True,
    T0,
    secret_hash="c" * 64,
    registered_scopes=("openid", "notes:read"),
    first_party=True,
    redirect_uris=("https://notes.example/cb", "http://127.0.0.1/cb?x=1"),
    post_logout_redirect_uris=("https://notes.example/bye",),
    registered_grants=("authorization_code", "refresh_token", "client_credentials"),
    backchannel_logout_uri="https://notes.example/backchannel",
    id_token_alg="EdDSA",
)


async def test_every_client_field_round_trips(storage: Storage) -> None:
    """Type, first-party flag, redirect and post-logout URIs (in order), grants,
    back-channel URI and ID-token algorithm come back exactly as stored (#12)."""
    await storage.clients.add(FULL)
    assert await storage.clients.get("c-full") == FULL
    assert await storage.clients.list() == [FULL]


async def test_a_client_without_grants_keeps_the_wave_one_grants(storage: Storage) -> None:
    """A client stored without grant types (as migration 0009 leaves wave-1 rows)
    reads back with None and may use the password and refresh grants (#12)."""
    await storage.clients.add(Client("old", "Wave 1", False, T0))
    found = await storage.clients.get("old")
    assert found is not None and found.registered_grants is None
    assert found.grant_types == WAVE1_GRANT_TYPES
    assert found.redirect_uris == () and found.first_party is False
    assert found.id_token_alg is None and found.backchannel_logout_uri is None


async def test_remove_deletes_one_client(storage: Storage) -> None:
    """remove() deletes only the named client and says whether it existed."""
    await storage.clients.add(FULL)
    await storage.clients.add(Client("other", "Other", False, T0 + 1))
    assert await storage.clients.remove("c-full") is True
    assert await storage.clients.get("c-full") is None
    assert await storage.clients.remove("c-full") is False
    assert [c.id for c in await storage.clients.list()] == ["other"]
