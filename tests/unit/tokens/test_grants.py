"""Token grants through a Keyturn: the password grant and its scopes, refresh
rotation (races, grace, reuse, expiry, the client binding), session tokens and
the per-user family cap."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.unit.tokens.support import (
    EMAIL,
    IP,
    PASSWORD,
    UA,
    MakeKeyturn,
    clock_of,
    events,
    sign_in,
)

from keyturn.clock import FrozenClock
from keyturn.errors import (
    InvalidClient,
    InvalidCredentials,
    InvalidGrant,
    InvalidScope,
    InvalidToken,
    NotAuthenticated,
    TooManyAttempts,
)
from keyturn.runtime import Keyturn
from keyturn.settings import Settings
from keyturn.stores.factory import open_storage
from keyturn.stores.records import Client


async def test_password_grant_returns_the_rfc6749_shape(
    keyturn: Keyturn, caplog: pytest.LogCaptureFixture
) -> None:
    """A right password gives access + refresh token, bearer type, lifetime and scope."""
    issued = await sign_in(keyturn.grants, scope="read write read")
    body = issued.to_dict()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["scope"] == "read write"
    assert body["refresh_token"].startswith("ktr_")
    claims, principal = await keyturn.bearer.authenticate(issued.access_token)
    assert principal.email == EMAIL and principal.via == "token"
    assert principal.scopes == ("read", "write")
    assert principal.session_id == claims.sid
    [event] = events(caplog, "sign_in")
    assert event["via"] == "token" and event["session"] == claims.sid
    assert issued.refresh_token not in caplog.text and issued.access_token not in caplog.text


async def test_password_grant_wrong_password_and_throttle(keyturn: Keyturn) -> None:
    """Wrong passwords are InvalidCredentials and count towards the sign-in throttle."""
    for _ in range(keyturn.settings.login_max_account_failures):
        with pytest.raises(InvalidCredentials):
            await keyturn.grants.password_grant(EMAIL, "wrong", ip=IP, user_agent=UA)
    with pytest.raises(TooManyAttempts):
        await sign_in(keyturn.grants)


async def test_password_grant_refuses_a_malformed_scope(keyturn: Keyturn) -> None:
    """A scope with a forbidden character is invalid_scope, before any hashing."""
    with pytest.raises(InvalidScope):
        await sign_in(keyturn.grants, scope='read "quoted"')


async def test_password_grant_keeps_to_the_clients_scopes(make_keyturn: MakeKeyturn) -> None:
    """A client gets the default scopes plus those it was registered with, and a
    scope outside them is invalid_scope, checked before the password (#10 item 10c)."""
    keyturn = await make_keyturn(default_scopes=["openid", "profile"])
    app = await keyturn.clients.add(
        "app", grant_types=["password", "refresh_token"], scopes=["notes:read"]
    )
    assert app.client.allowed_scopes == ("openid", "profile", "notes:read")
    issued = await sign_in(keyturn.grants, scope="openid notes:read", client_id=app.client.id)
    assert issued.scope == issued.claims.scope == "openid notes:read"
    for scope in ("notes:read notes:write", "admin", "email"):
        with pytest.raises(InvalidScope):
            await sign_in(keyturn.grants, scope=scope, client_id=app.client.id)
    with pytest.raises(InvalidScope):  # refused before the password is even checked
        await keyturn.grants.password_grant(
            EMAIL, "wrong", scope="admin", client_id=app.client.id, ip=IP, user_agent=UA
        )
    with pytest.raises(InvalidClient):
        await sign_in(keyturn.grants, scope="openid", client_id="no-such-client")


async def test_first_party_password_grant_keeps_to_the_default_scopes(
    make_keyturn: MakeKeyturn,
) -> None:
    """Without a client_id the grant may ask only for --default-scopes: anything
    else, say an "admin" scope an API checks, is invalid_scope (#10 item 10c)."""
    keyturn = await make_keyturn(default_scopes=["openid", "notes:read"])
    issued = await sign_in(keyturn.grants, scope="notes:read openid")
    assert issued.scope == "notes:read openid"
    assert (await sign_in(keyturn.grants)).scope == ""
    for scope in ("admin", "notes:read notes:write", "profile"):
        with pytest.raises(InvalidScope):
            await sign_in(keyturn.grants, scope=scope)


async def test_a_client_without_its_own_scopes_follows_the_default_scopes(
    make_keyturn: MakeKeyturn,
) -> None:
    """A client stored before clients had scopes (allowed_scopes None, as migration
    0007 leaves wave-1 clients) keeps working with --default-scopes (#10 item 10c)."""
    keyturn = await make_keyturn(default_scopes=["openid", "notes:read"])
    await keyturn.storage.clients.add(Client("wave-1", "old app", False, 1.0))
    issued = await sign_in(keyturn.grants, scope="notes:read", client_id="wave-1")
    assert issued.claims.client_id == "wave-1"
    with pytest.raises(InvalidScope):
        await sign_in(keyturn.grants, scope="notes:write", client_id="wave-1")


async def test_refresh_rotates_and_kills_the_old_token(keyturn: Keyturn) -> None:
    """R1 -> R2 with a new access token; R1 after the grace window is invalid_grant."""
    first = await sign_in(keyturn.grants)
    clock_of(keyturn).advance(60)
    second = await keyturn.grants.refresh_grant(first.refresh_token, ip=IP)
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert second.claims.sid == first.claims.sid
    clock_of(keyturn).advance(keyturn.settings.refresh_grace + 1)
    with pytest.raises(InvalidGrant):
        await keyturn.grants.refresh_grant(first.refresh_token)


async def test_refresh_within_grace_returns_the_same_pair(keyturn: Keyturn) -> None:
    """A repeat inside the grace window gets the very same successor pair."""
    first = await sign_in(keyturn.grants)
    a = await keyturn.grants.refresh_grant(first.refresh_token)
    clock_of(keyturn).advance(keyturn.settings.refresh_grace - 1)
    b = await keyturn.grants.refresh_grant(first.refresh_token)
    assert (a.access_token, a.refresh_token) == (b.access_token, b.refresh_token)
    assert b.expires_in == a.expires_in - (keyturn.settings.refresh_grace - 1)


async def _race_and_replay(keyturn: Keyturn, caplog: pytest.LogCaptureFixture) -> None:
    first = await sign_in(keyturn.grants)
    results = await asyncio.gather(
        *(keyturn.grants.refresh_grant(first.refresh_token) for _ in range(4))
    )
    pairs = {(r.access_token, r.refresh_token) for r in results}
    assert len(pairs) == 1, "every parallel refresh gets the same successor pair"
    successor = results[0]
    # The family survives: the successor refreshes normally.
    third = await keyturn.grants.refresh_grant(successor.refresh_token)
    await keyturn.bearer.authenticate(third.access_token)
    # A replay of the first token after the grace window kills the whole family.
    clock_of(keyturn).advance(keyturn.settings.refresh_grace + 1)
    with pytest.raises(InvalidGrant):
        await keyturn.grants.refresh_grant(first.refresh_token)
    with pytest.raises(InvalidGrant):
        await keyturn.grants.refresh_grant(third.refresh_token)
    with pytest.raises(InvalidToken):
        await keyturn.bearer.authenticate(third.access_token)
    [event] = events(caplog, "refresh_reuse_detected")
    assert event["session"] == first.claims.sid


async def test_parallel_refreshes_share_one_successor_on_memory(
    keyturn: Keyturn, caplog: pytest.LogCaptureFixture
) -> None:
    """Four concurrent refreshes of one token all succeed with one pair; a late replay
    revokes the family (memory store)."""
    await _race_and_replay(keyturn, caplog)


async def test_parallel_refreshes_share_one_successor_on_sqlite(
    make_keyturn: MakeKeyturn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The same race and replay on a migrated SQLite file."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'race.db'}"
    storage = await open_storage(Settings(database_url=url))
    try:
        await _race_and_replay(await make_keyturn(storage=storage), caplog)
    finally:
        await storage.close()


@pytest.mark.postgres
async def test_parallel_refreshes_share_one_successor_on_postgres(
    make_keyturn: MakeKeyturn, postgres_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The same race and replay on a real PostgreSQL database."""
    storage = await open_storage(Settings(database_url=postgres_database_url), migrate=True)
    try:
        await _race_and_replay(await make_keyturn(storage=storage), caplog)
    finally:
        await storage.close()


@pytest.mark.postgres
async def test_two_instances_on_postgres_race_one_token(
    make_keyturn: MakeKeyturn, postgres_database_url: str
) -> None:
    """Two Keyturns (own engines) on one PostgreSQL refresh one token at once: one
    rotation, and every caller gets that one successor pair."""
    settings = Settings(database_url=postgres_database_url)
    first_storage = await open_storage(settings, migrate=True)
    second_storage = await open_storage(settings, migrate=False)
    try:
        clock = FrozenClock()
        one = await make_keyturn(storage=first_storage, clock=clock)
        two = await make_keyturn(storage=second_storage, clock=clock)
        issued = await sign_in(one.grants)
        calls = [
            instance.grants.refresh_grant(issued.refresh_token)
            for _ in range(4)
            for instance in (one, two)
        ]
        results = await asyncio.gather(*calls)
        assert len({r.refresh_token for r in results}) == 1
        families = await one.refresh_families.list_live((await one.accounts.list())[0].id)
        assert len(families) == 1
    finally:
        await first_storage.close()
        await second_storage.close()


async def test_replayed_family_tokens_are_accepted_in_stateless_mode(
    make_keyturn: MakeKeyturn,
) -> None:
    """Stateless mode skips the access-token revocation check (refresh still dies)."""
    keyturn = await make_keyturn(revocation_mode="stateless")
    first = await sign_in(keyturn.grants)
    second = await keyturn.grants.refresh_grant(first.refresh_token)
    clock_of(keyturn).advance(keyturn.settings.refresh_grace + 1)
    with pytest.raises(InvalidGrant):
        await keyturn.grants.refresh_grant(first.refresh_token)
    with pytest.raises(InvalidGrant):
        await keyturn.grants.refresh_grant(second.refresh_token)
    await keyturn.bearer.authenticate(second.access_token)  # accepted: stateless
    assert keyturn.revocations.is_sid_revoked(second.claims.sid)  # but recorded


async def test_sliding_expiry_with_an_absolute_cap(make_keyturn: MakeKeyturn) -> None:
    """Each refresh extends the idle lifetime, never past refresh_max_age."""
    keyturn = await make_keyturn(refresh_token_ttl=1000, refresh_max_age=2500)
    clock = clock_of(keyturn)
    current = await sign_in(keyturn.grants)
    for _ in range(2):  # t = 900, 1800: each refresh is inside the idle window
        clock.advance(900)
        current = await keyturn.grants.refresh_grant(current.refresh_token)
    clock.advance(800)  # t = 2600: idle window still open (1800 + 1000) but past the cap
    with pytest.raises(InvalidGrant):
        await keyturn.grants.refresh_grant(current.refresh_token)


async def test_refresh_expires_from_disuse(make_keyturn: MakeKeyturn) -> None:
    """A refresh token unused for refresh_token_ttl is invalid_grant."""
    keyturn = await make_keyturn(refresh_token_ttl=1000, refresh_max_age=5000)
    issued = await sign_in(keyturn.grants)
    clock_of(keyturn).advance(1000)
    with pytest.raises(InvalidGrant):
        await keyturn.grants.refresh_grant(issued.refresh_token)
    assert await keyturn.refresh_families.list_live(issued.claims.sub) == []


async def test_refresh_of_a_disabled_user_fails(keyturn: Keyturn) -> None:
    """Disabling a user ends its families: refresh is invalid_grant, tokens refused."""
    issued = await sign_in(keyturn.grants)
    await keyturn.auth.disable_user(EMAIL)
    with pytest.raises(InvalidGrant):
        await keyturn.grants.refresh_grant(issued.refresh_token)
    with pytest.raises(InvalidToken):
        await keyturn.bearer.authenticate(issued.access_token)


async def test_refresh_is_bound_to_its_client(keyturn: Keyturn) -> None:
    """A family issued to one client cannot be refreshed by another (or by none,
    for a confidential client)."""
    gateway = await keyturn.clients.add(
        "gw", grant_types=["password", "refresh_token"], confidential=True
    )
    other = await keyturn.clients.add("spa", grant_types=["password", "refresh_token"])
    issued = await sign_in(keyturn.grants, client_id=gateway.client.id)
    assert issued.claims.client_id == gateway.client.id
    with pytest.raises(InvalidGrant):
        await keyturn.grants.refresh_grant(issued.refresh_token, client_id=other.client.id)
    with pytest.raises(InvalidGrant):
        await keyturn.grants.refresh_grant(issued.refresh_token)
    await keyturn.grants.refresh_grant(issued.refresh_token, client_id=gateway.client.id)


async def test_garbage_and_tampered_refresh_tokens_are_invalid_grant(keyturn: Keyturn) -> None:
    """One changed character, a JWT, or junk: invalid_grant."""
    issued = await sign_in(keyturn.grants)
    token = issued.refresh_token
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (tampered, issued.access_token, "", "ktr_", "x" * 10_000):
        with pytest.raises(InvalidGrant):
            await keyturn.grants.refresh_grant(bad)


async def test_session_token_is_bound_to_the_session(keyturn: Keyturn) -> None:
    """A session's token carries its handle as sid, has no refresh token, and dies
    when the session is signed out."""
    _, session = await keyturn.auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    validated = await keyturn.sessions.validate(session.secret)
    issued = await keyturn.grants.session_token(validated)
    assert issued.claims.sid == session.session.handle
    assert set(issued.to_dict()) == {"access_token", "token_type", "expires_in"}
    await keyturn.bearer.authenticate(issued.access_token)
    await keyturn.auth.sign_out(session.secret, ip=IP, user_agent=UA)
    with pytest.raises(InvalidToken):
        await keyturn.bearer.authenticate(issued.access_token)


async def test_session_token_never_outlives_the_session(make_keyturn: MakeKeyturn) -> None:
    """The token's lifetime is capped by the session's idle window and absolute end."""
    keyturn = await make_keyturn(session_idle_timeout=600, session_max_age=1000)
    clock = clock_of(keyturn)
    _, session = await keyturn.auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    validated = await keyturn.sessions.validate(session.secret)
    assert (await keyturn.grants.session_token(validated)).expires_in == 600
    clock.advance(500)
    validated = await keyturn.sessions.validate(session.secret)
    assert (await keyturn.grants.session_token(validated)).expires_in == 500
    clock.advance(499.5)
    with pytest.raises(NotAuthenticated):
        await keyturn.grants.session_token(validated)


async def test_sign_ins_beyond_the_family_cap_end_the_oldest(
    make_keyturn: MakeKeyturn, caplog: pytest.LogCaptureFixture
) -> None:
    """Past max_refresh_families_per_user, a password grant revokes the user's oldest
    family: its refresh token and access token stop working, the eviction is
    audited like a session's, and the newer sign-ins live on (#10 item 10d)."""
    keyturn = await make_keyturn(max_refresh_families_per_user=2)
    clock = clock_of(keyturn)
    pairs = []
    for _ in range(3):
        pairs.append(await sign_in(keyturn.grants))
        clock.advance(1)
    oldest, *newer = pairs
    with pytest.raises(InvalidGrant):
        await keyturn.grants.refresh_grant(oldest.refresh_token)
    with pytest.raises(InvalidToken):
        await keyturn.bearer.authenticate(oldest.access_token)
    [event] = events(caplog, "session_evicted")
    assert event["session"] == oldest.claims.sid and event["via"] == "token"
    assert event["reason"] == "max_refresh_families_per_user" and event["ip"] == IP
    listed = await keyturn.refresh_families.list_live(oldest.claims.sub)
    assert [f.id for f in listed] == [pair.claims.sid for pair in newer]
    for pair in newer:
        await keyturn.bearer.authenticate(pair.access_token)
        await keyturn.grants.refresh_grant(pair.refresh_token)
