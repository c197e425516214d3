"""The client credentials grant through a Keyturn (#12, RFC 6749 section 4.4)."""

from __future__ import annotations

import pytest
from tests.unit.tokens.support import events

from keyturn.errors import GrantNotAllowed, InvalidClient, InvalidScope, InvalidToken
from keyturn.runtime import Keyturn


async def test_the_token_is_the_clients_own(
    keyturn: Keyturn, caplog: pytest.LogCaptureFixture
) -> None:
    """sub and client_id are the client, no sid, no refresh token, no roles; the
    bearer path sees the client (no user read), and the issue is audited."""
    created = await keyturn.clients.add(
        "svc", confidential=True, grant_types=["client_credentials"], scopes=["read"]
    )
    issued = await keyturn.grants.client_credentials_grant(created.client.id, scope="read")
    assert issued.refresh_token is None and issued.scope == "read"
    assert issued.to_dict()["scope"] == "read"
    claims, principal = await keyturn.bearer.authenticate(issued.access_token)
    assert claims.sub == claims.client_id == created.client.id and claims.sid == ""
    assert principal.client_id == created.client.id and principal.email == ""
    assert principal.scopes == ("read",) and principal.roles == ()
    [event] = events(caplog, "client_token_issued")
    assert event["client_id"] == created.client.id
    assert issued.access_token not in caplog.text


async def test_revoking_the_jti_ends_it_in_strict_mode(keyturn: Keyturn) -> None:
    """RFC 7009 revocation by its client denies the token on the bearer path."""
    created = await keyturn.clients.add(
        "svc", confidential=True, grant_types=["client_credentials"]
    )
    issued = await keyturn.grants.client_credentials_grant(created.client.id)
    await keyturn.token_revoker.revoke(issued.access_token, None, client_id=created.client.id)
    with pytest.raises(InvalidToken):
        await keyturn.bearer.authenticate(issued.access_token)


async def test_only_confidential_clients_with_the_grant(keyturn: Keyturn) -> None:
    """A public client is invalid_client; a confidential client without the
    grant is unauthorized_client; an unknown id is invalid_client."""
    public = await keyturn.clients.add("spa")
    web = await keyturn.clients.add("web", confidential=True)
    with pytest.raises(InvalidClient):
        await keyturn.grants.client_credentials_grant(public.client.id)
    with pytest.raises(GrantNotAllowed):
        await keyturn.grants.client_credentials_grant(web.client.id)
    with pytest.raises(InvalidClient):
        await keyturn.grants.client_credentials_grant("no-such-client")


async def test_scope_is_limited_to_the_allowlist(keyturn: Keyturn) -> None:
    """A scope outside the client's allowlist is invalid_scope."""
    created = await keyturn.clients.add(
        "svc", confidential=True, grant_types=["client_credentials"], scopes=["read"]
    )
    with pytest.raises(InvalidScope):
        await keyturn.grants.client_credentials_grant(created.client.id, scope="admin")
