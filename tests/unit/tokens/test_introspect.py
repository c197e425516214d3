"""RFC 7662 introspection through a Keyturn."""

from __future__ import annotations

from tests.unit.tokens.support import (
    MakeKeyturn,
    clock_of,
    sign_in,
)

from keyturn.runtime import Keyturn


async def test_introspect_active_access_and_refresh_tokens(keyturn: Keyturn) -> None:
    """Live tokens introspect with the RFC 7662 members and their token_type."""
    client = await keyturn.clients.add(
        "spa", grant_types=["password", "refresh_token"], scopes=["read"]
    )
    issued = await sign_in(keyturn.grants, scope="read", client_id=client.client.id)
    access = await keyturn.introspector.introspect(issued.access_token)
    assert access["active"] is True and access["token_type"] == "access_token"
    for name in ("sub", "exp", "iat", "iss", "aud", "jti", "scope"):
        assert name in access
    assert access["scope"] == "read" and access["client_id"] == client.client.id
    assert access["exp"] == issued.claims.exp and access["jti"] == issued.claims.jti
    refresh = await keyturn.introspector.introspect(issued.refresh_token)
    assert refresh["active"] is True and refresh["token_type"] == "refresh_token"
    assert refresh["sub"] == issued.claims.sub and refresh["client_id"] == client.client.id


async def test_introspect_inactive_is_exactly_active_false(keyturn: Keyturn) -> None:
    """Garbage, revoked, used and expired tokens are exactly {"active": false}."""
    issued = await sign_in(keyturn.grants)
    assert await keyturn.introspector.introspect("garbage") == {"active": False}
    successor = await keyturn.grants.refresh_grant(issued.refresh_token)
    assert await keyturn.introspector.introspect(issued.refresh_token) == {"active": False}
    await keyturn.token_revoker.revoke(successor.access_token)
    assert await keyturn.introspector.introspect(successor.access_token) == {"active": False}
    clock_of(keyturn).advance(keyturn.settings.access_token_ttl + 60)
    assert await keyturn.introspector.introspect(issued.access_token) == {"active": False}


async def test_introspect_checks_revocation_even_in_stateless_mode(
    make_keyturn: MakeKeyturn,
) -> None:
    """Introspection is the strict path for downstream services, whatever the mode."""
    keyturn = await make_keyturn(revocation_mode="stateless")
    issued = await sign_in(keyturn.grants)
    await keyturn.token_revoker.revoke(issued.access_token)
    await keyturn.bearer.authenticate(issued.access_token)
    assert await keyturn.introspector.introspect(issued.access_token) == {"active": False}
