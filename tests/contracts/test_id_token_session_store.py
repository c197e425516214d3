"""The ID-token session store contract (which clients hold an ID token in which
browser session, for back-channel logout): memory, SQLite, PostgreSQL and the
SQL + Redis bundle."""

from __future__ import annotations

import asyncio

from tests.contracts.wave2_support import T0

from keyturn.oidc.store import IdTokenSession
from keyturn.stores.wave2 import Wave2Stores


def entry(handle: str, client_id: str, created_at: float = T0) -> IdTokenSession:
    return IdTokenSession(handle, client_id, "user-1", created_at)


async def test_take_returns_a_sessions_clients_once(wave2: Wave2Stores) -> None:
    """A recorded (session, client) comes back from take_for_sessions once; other
    sessions' entries stay; recording the same pair twice keeps one entry."""
    store = wave2.id_token_sessions
    await store.record(entry("s1", "rp-a"))
    await store.record(entry("s1", "rp-a", T0 + 5))
    await store.record(entry("s1", "rp-b"))
    await store.record(entry("s2", "rp-a"))
    taken = await store.take_for_sessions(["s1"])
    assert sorted((e.client_id, e.created_at) for e in taken) == [("rp-a", T0), ("rp-b", T0)]
    assert await store.take_for_sessions(["s1"]) == []
    assert [e.session_handle for e in await store.take_for_sessions(["s2", "nope"])] == ["s2"]
    assert await store.take_for_sessions([]) == []


async def test_concurrent_takes_share_the_entries_out_once(wave2: Wave2Stores) -> None:
    """Racing takes of the same session never return an entry twice."""
    store = wave2.id_token_sessions
    for number in range(5):
        await store.record(entry("s1", f"rp-{number}"))
    results = await asyncio.gather(*(store.take_for_sessions(["s1"]) for _ in range(6)))
    clients = [e.client_id for result in results for e in result]
    assert sorted(clients) == [f"rp-{number}" for number in range(5)]


async def test_purge_drops_only_old_entries(wave2: Wave2Stores) -> None:
    """purge deletes entries created before the cut-off and counts them."""
    store = wave2.id_token_sessions
    await store.record(entry("old", "rp", T0 - 100))
    await store.record(entry("new", "rp", T0))
    assert await store.purge(T0 - 1) == 1
    assert [e.session_handle for e in await store.take_for_sessions(["old", "new"])] == ["new"]
