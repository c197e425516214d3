"""Ending tokens through a Keyturn: RFC 7009 revocation (bound to the token's
client), sign-outs, password changes and the sign-ins list."""

from __future__ import annotations

import pytest
from tests.unit.tokens.support import (
    EMAIL,
    IP,
    PASSWORD,
    UA,
    clock_of,
    events,
    sign_in,
)

from keyturn.errors import (
    InvalidClient,
    InvalidGrant,
    InvalidToken,
    NotAuthenticated,
    NotFound,
)
from keyturn.runtime import Keyturn


async def test_revoke_access_token_denies_only_it(keyturn: Keyturn) -> None:
    """RFC 7009 on an access token: that token dies, its family lives on."""
    issued = await sign_in(keyturn.grants)
    await keyturn.token_revoker.revoke(
        issued.access_token, "refresh_token"
    )  # wrong hint still works
    with pytest.raises(InvalidToken):
        await keyturn.bearer.authenticate(issued.access_token)
    fresh = await keyturn.grants.refresh_grant(issued.refresh_token)
    await keyturn.bearer.authenticate(fresh.access_token)


async def test_revoke_refresh_token_kills_family_and_its_access_tokens(keyturn: Keyturn) -> None:
    """RFC 7009 on a refresh token: the family and its access tokens die."""
    issued = await sign_in(keyturn.grants)
    await keyturn.token_revoker.revoke(issued.refresh_token)
    with pytest.raises(InvalidGrant):
        await keyturn.grants.refresh_grant(issued.refresh_token)
    with pytest.raises(InvalidToken):
        await keyturn.bearer.authenticate(issued.access_token)


async def test_revoke_unknown_tokens_is_fine(keyturn: Keyturn) -> None:
    """Unknown, garbage and already-revoked tokens revoke without error (RFC 7009
    section 2.2), and garbage ends nothing: another sign-in's tokens still work."""
    issued = await sign_in(keyturn.grants)
    other = await sign_in(keyturn.grants)
    for value in ("garbage", "ktr_" + "A" * 43, "a.b.c", "", issued.refresh_token):
        await keyturn.token_revoker.revoke(value)
    await keyturn.token_revoker.revoke(issued.refresh_token)
    with pytest.raises(InvalidGrant):
        await keyturn.grants.refresh_grant(issued.refresh_token)
    claims, _ = await keyturn.bearer.authenticate(other.access_token)
    assert claims.sid == other.claims.sid
    assert (await keyturn.grants.refresh_grant(other.refresh_token)).refresh_token


async def test_revoke_is_bound_to_the_tokens_client(
    keyturn: Keyturn, caplog: pytest.LogCaptureFixture
) -> None:
    """Another client's revoke leaves the token alive (audited as refused); a
    confidential client's token without its client is InvalidClient; its own
    client revokes it (RFC 7009 section 2.1; #10 item 4)."""
    gateway = await keyturn.clients.add(
        "gw", grant_types=["password", "refresh_token"], confidential=True
    )
    other = await keyturn.clients.add(
        "other", grant_types=["password", "refresh_token"], confidential=True
    )
    issued = await sign_in(keyturn.grants, client_id=gateway.client.id)
    for token in (issued.refresh_token, issued.access_token):
        await keyturn.token_revoker.revoke(token, client_id=other.client.id)
        with pytest.raises(InvalidClient):
            await keyturn.token_revoker.revoke(token)
    await keyturn.bearer.authenticate(issued.access_token)
    refused = events(caplog, "token_revoked")
    assert [e["outcome"] for e in refused] == ["refused", "refused"]
    assert {e["kind"] for e in refused} == {"refresh", "access"}
    assert all(e["client_id"] == other.client.id for e in refused)
    await keyturn.token_revoker.revoke(issued.refresh_token, client_id=gateway.client.id)
    with pytest.raises(InvalidGrant):
        await keyturn.grants.refresh_grant(issued.refresh_token, client_id=gateway.client.id)
    with pytest.raises(InvalidToken):
        await keyturn.bearer.authenticate(issued.access_token)
    first_party = await sign_in(keyturn.grants)
    await keyturn.token_revoker.revoke(first_party.access_token, client_id=other.client.id)
    await keyturn.bearer.authenticate(first_party.access_token)
    await keyturn.token_revoker.revoke(first_party.access_token)
    with pytest.raises(InvalidToken):
        await keyturn.bearer.authenticate(first_party.access_token)


async def test_logout_token_revokes_it_and_its_family(keyturn: Keyturn) -> None:
    """Bearer logout: that token and its refresh family end."""
    issued = await sign_in(keyturn.grants)
    await keyturn.token_revoker.sign_out(issued.claims)
    with pytest.raises(InvalidToken):
        await keyturn.bearer.authenticate(issued.access_token)
    with pytest.raises(InvalidGrant):
        await keyturn.grants.refresh_grant(issued.refresh_token)


async def test_logout_all_kills_families_sessions_and_access_tokens(keyturn: Keyturn) -> None:
    """logout-all ends every browser session, every family and every access token."""
    one, two = await sign_in(keyturn.grants), await sign_in(keyturn.grants)
    _, session = await keyturn.auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    from_session = await keyturn.grants.session_token(
        await keyturn.sessions.validate(session.secret)
    )
    await keyturn.auth.sign_out_everywhere(one.claims.sub)
    for issued in (one, two):
        with pytest.raises(InvalidGrant):
            await keyturn.grants.refresh_grant(issued.refresh_token)
    for access in (one.access_token, two.access_token, from_session.access_token):
        with pytest.raises(InvalidToken):
            await keyturn.bearer.authenticate(access)
    with pytest.raises(NotAuthenticated):
        await keyturn.sessions.validate(session.secret)
    assert await keyturn.refresh_families.list_live(one.claims.sub) == []
    clock_of(keyturn).advance(1)  # a new sign-in after the cut-off works
    again = await sign_in(keyturn.grants)
    await keyturn.bearer.authenticate(again.access_token)


async def test_token_password_change_keeps_only_the_callers_family(keyturn: Keyturn) -> None:
    """A bearer password change ends other families and every earlier access token,
    and keeps the caller's family for a fresh access token."""
    mine, other = await sign_in(keyturn.grants), await sign_in(keyturn.grants)
    clock_of(keyturn).advance(1)
    await keyturn.auth.change_password_for_token(
        mine.claims.sub, mine.claims.sid, PASSWORD, "a brand new passphrase"
    )
    with pytest.raises(InvalidToken):
        await keyturn.bearer.authenticate(mine.access_token)
    with pytest.raises(InvalidGrant):
        await keyturn.grants.refresh_grant(other.refresh_token)
    clock_of(keyturn).advance(1)
    fresh = await keyturn.grants.refresh_grant(mine.refresh_token)
    await keyturn.bearer.authenticate(fresh.access_token)


async def test_session_password_change_ends_token_sign_ins(keyturn: Keyturn) -> None:
    """The session password change also revokes families and earlier access tokens."""
    issued = await sign_in(keyturn.grants)
    _, session = await keyturn.auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    clock_of(keyturn).advance(1)
    await keyturn.auth.change_password(session.secret, PASSWORD, "a brand new passphrase")
    with pytest.raises(InvalidGrant):
        await keyturn.grants.refresh_grant(issued.refresh_token)
    with pytest.raises(InvalidToken):
        await keyturn.bearer.authenticate(issued.access_token)


async def test_list_and_revoke_families(keyturn: Keyturn) -> None:
    """Families are listed per user; revoking another user's family is NotFound."""
    issued = await sign_in(keyturn.grants)
    [family] = await keyturn.refresh_families.list_live(issued.claims.sub)
    assert family.id == issued.claims.sid and family.ip == IP and family.user_agent == UA
    with pytest.raises(NotFound):
        await keyturn.token_revoker.end_family("someone-else", family.id)
    with pytest.raises(NotFound):
        await keyturn.token_revoker.end_family(issued.claims.sub, "missing")
    await keyturn.token_revoker.end_family(issued.claims.sub, family.id)
    assert await keyturn.refresh_families.list_live(issued.claims.sub) == []
    with pytest.raises(InvalidToken):
        await keyturn.bearer.authenticate(issued.access_token)
