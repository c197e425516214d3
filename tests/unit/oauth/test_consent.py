"""Consent grants per user and client: covered, missing, grant, revoke."""

from __future__ import annotations

from keyturn.clock import FrozenClock
from keyturn.oauth.consent import Consents
from keyturn.oauth.memory import MemoryConsentStore


def make_consents(clock: FrozenClock) -> Consents:
    """Consents over a memory store."""
    return Consents(MemoryConsentStore(), clock)


async def test_nothing_is_covered_without_a_grant(clock: FrozenClock) -> None:
    """A first visit asks, even for an empty scope set."""
    consents = make_consents(clock)
    assert not await consents.covered("u1", "app", ["openid"])
    assert not await consents.covered("u1", "app", [])


async def test_subset_of_granted_scopes_is_covered(clock: FrozenClock) -> None:
    """requested ⊆ granted means no consent page."""
    consents = make_consents(clock)
    await consents.grant("u1", "app", ["openid", "email"])
    assert await consents.covered("u1", "app", ["email"])
    assert await consents.covered("u1", "app", ["openid", "email"])
    assert await consents.covered("u1", "app", [])


async def test_new_scope_is_not_covered_and_is_reported_missing(clock: FrozenClock) -> None:
    """Asking for more than was granted shows the page for the new scopes only."""
    consents = make_consents(clock)
    await consents.grant("u1", "app", ["openid"])
    assert not await consents.covered("u1", "app", ["openid", "email"])
    assert await consents.missing("u1", "app", ["openid", "email", "profile"]) == (
        "email",
        "profile",
    )


async def test_grants_accumulate_and_keep_the_first_grant_time(clock: FrozenClock) -> None:
    """A second consent adds scopes; granted_at stays, updated_at moves."""
    consents = make_consents(clock)
    first = await consents.grant("u1", "app", ["openid"])
    clock.advance(100)
    second = await consents.grant("u1", "app", ["email"])
    assert second.scopes == {"openid", "email"}
    assert second.granted_at == first.granted_at and second.updated_at == first.updated_at + 100


async def test_grants_are_per_user_and_per_client(clock: FrozenClock) -> None:
    """One user's consent to one app covers no other user and no other app."""
    consents = make_consents(clock)
    await consents.grant("u1", "app", ["openid"])
    assert not await consents.covered("u2", "app", ["openid"])
    assert not await consents.covered("u1", "other", ["openid"])


async def test_revoke_returns_the_grant_and_forgets_it(clock: FrozenClock) -> None:
    """Revoking ends coverage and hands back what was revoked (to end families)."""
    consents = make_consents(clock)
    await consents.grant("u1", "app", ["openid"])
    revoked = await consents.revoke("u1", "app")
    assert revoked is not None and revoked.client_id == "app"
    assert not await consents.covered("u1", "app", ["openid"])
    assert await consents.revoke("u1", "app") is None


async def test_list_shows_connected_apps_oldest_first(clock: FrozenClock) -> None:
    """The user's grants are listed for /account, oldest first."""
    consents = make_consents(clock)
    await consents.grant("u1", "b", ["openid"])
    clock.advance(1)
    await consents.grant("u1", "a", ["email"])
    await consents.grant("u2", "c", ["email"])
    assert [grant.client_id for grant in await consents.list("u1")] == ["b", "a"]
