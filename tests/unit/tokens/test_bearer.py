"""The bearer path through a Keyturn: refresh tokens are never access tokens, the
hot path reads no store, and verification follows key rotations."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from tests.unit.tokens.support import (
    EMAIL,
    IP,
    PASSWORD,
    UA,
    MakeKeyturn,
    clock_of,
    sign_in,
)

from keyturn.clock import FrozenClock
from keyturn.errors import (
    InvalidToken,
)
from keyturn.runtime import Keyturn
from keyturn.stores.memory import MemoryStorage


async def test_refresh_token_is_never_an_access_token(keyturn: Keyturn) -> None:
    """A refresh token presented as a bearer token is refused."""
    issued = await sign_in(keyturn.grants)
    with pytest.raises(InvalidToken):
        await keyturn.bearer.authenticate(issued.refresh_token)


async def test_bearer_hot_path_reads_no_store(keyturn: Keyturn) -> None:
    """Within the staleness bound, repeated bearer checks touch neither the user store
    nor the revocation store."""
    issued = await sign_in(keyturn.grants)
    await keyturn.bearer.authenticate(issued.access_token)
    calls: list[str] = []
    users, revocations = keyturn.storage.users, keyturn.storage.revocations
    original_get, original_changes = users.get, revocations.changes

    async def counting_get(user_id: str) -> Any:
        calls.append("user")
        return await original_get(user_id)

    async def counting_changes(**kwargs: Any) -> Any:
        calls.append("revocations")
        return await original_changes(**kwargs)

    users.get = counting_get  # type: ignore[method-assign]
    revocations.changes = counting_changes  # type: ignore[method-assign]
    for _ in range(100):
        await keyturn.bearer.authenticate(issued.access_token)
    assert calls == []
    clock_of(keyturn).advance(keyturn.settings.staleness_bound)
    await keyturn.bearer.authenticate(issued.access_token)
    assert sorted(calls) == ["revocations", "user"]


async def test_bearer_follows_a_key_rotated_by_another_instance(make_keyturn: MakeKeyturn) -> None:
    """A token signed with a key another instance just rotated in is accepted at once:
    the unknown kid makes this instance re-read the key store (rate-limited)."""
    storage = MemoryStorage()
    clock = FrozenClock()
    one = await make_keyturn(storage, clock)
    other = await make_keyturn(storage, clock)
    await other.keys.rotate()
    granted = await other.grants.password_grant(
        EMAIL, PASSWORD, scope="", client_id=None, ip=IP, user_agent=UA
    )
    claims, principal = await one.bearer.authenticate(granted.access_token)
    assert claims.sub == principal.subject
    assert principal.email == EMAIL


async def test_unknown_kid_reloads_are_rate_limited(make_keyturn: MakeKeyturn) -> None:
    """Garbage kids cannot make an instance hit the key store on every request."""
    keyturn = await make_keyturn()
    reads = 0
    original = keyturn.storage.keys.list

    async def counting_list() -> Any:
        nonlocal reads
        reads += 1
        return await original()

    keyturn.storage.keys.list = counting_list  # type: ignore[method-assign]
    granted = await keyturn.grants.password_grant(
        EMAIL, PASSWORD, scope="", client_id=None, ip=IP, user_agent=UA
    )
    header, payload, signature = granted.access_token.split(".")
    forged_header = json.loads(base64.urlsafe_b64decode(header + "=="))
    for attempt in range(20):
        forged_header["kid"] = f"unknown-{attempt}"
        encoded = base64.urlsafe_b64encode(json.dumps(forged_header).encode()).rstrip(b"=").decode()
        with pytest.raises(InvalidToken):
            await keyturn.bearer.authenticate(f"{encoded}.{payload}.{signature}")
    assert reads <= 1
