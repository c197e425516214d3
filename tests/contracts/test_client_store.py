"""The ClientStore contract, run against every implementation."""

from __future__ import annotations

import pytest

from keyturn.errors import AlreadyExists
from keyturn.stores.protocols import Storage
from keyturn.stores.records import Client

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
    scoped = Client("c-scoped", "App", False, T0, allowed_scopes=("openid", "notes:read"))
    none = Client("c-none", "Wave 1", False, T0 + 1)
    empty = Client("c-empty", "Nothing", True, T0 + 2, secret_hash="b" * 64, allowed_scopes=())
    for client in (scoped, none, empty):
        await storage.clients.add(client)
    assert await storage.clients.get("c-scoped") == scoped
    found = await storage.clients.get("c-none")
    assert found is not None and found.allowed_scopes is None
    found = await storage.clients.get("c-empty")
    assert found is not None and found.allowed_scopes == ()
    assert [c.allowed_scopes for c in await storage.clients.list()] == [
        ("openid", "notes:read"),
        None,
        (),
    ]
