"""The token service: password and refresh grants, rotation races, reuse detection,
bearer authentication in strict and stateless modes, revocation, introspection,
session tokens and sign-outs."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from keyturn.audit import AUDIT_LOGGER
from keyturn.clock import FrozenClock
from keyturn.errors import (
    InvalidClient,
    InvalidCredentials,
    InvalidGrant,
    InvalidScope,
    InvalidToken,
    NotAuthenticated,
    NotFound,
    TooManyAttempts,
)
from keyturn.keys.encryption import KeyEncryptor, generate_kek
from keyturn.passwords import PasswordHasher
from keyturn.runtime import Keyturn
from keyturn.settings import DEFAULT_SCOPES, Settings
from keyturn.stores.base import Client, Storage
from keyturn.stores.factory import open_storage
from keyturn.stores.memory import MemoryStorage
from keyturn.token_service import TokenResponse, TokenService

EMAIL = "alice@example.org"
PASSWORD = "correct horse battery"
IP = "192.0.2.10"
UA = "pytest-client/1.0"

MakeKeyturn = Callable[..., Awaitable[Keyturn]]


@pytest.fixture
async def make_keyturn(fast_hasher: PasswordHasher) -> AsyncIterator[MakeKeyturn]:
    """Build started Keyturns on memory storage (or a given one) and a frozen clock,
    each with the account EMAIL (registered once per storage)."""
    opened: list[Keyturn] = []

    async def make(
        storage: Storage | None = None, clock: FrozenClock | None = None, **overrides: Any
    ) -> Keyturn:
        # The scopes the tests' first-party password grants ask for.
        overrides.setdefault("default_scopes", [*DEFAULT_SCOPES, "read", "write"])
        settings = Settings(max_sessions_per_user=5, **overrides)
        runtime = Keyturn(
            settings,
            storage=storage or MemoryStorage(),
            clock=clock or FrozenClock(),
            hasher=fast_hasher,
            key_encryptor=KeyEncryptor.from_text(KEK),
        )
        await runtime.start()
        opened.append(runtime)
        if await runtime.storage.users.get_by_email(EMAIL) is None:
            await runtime.accounts.register(EMAIL, PASSWORD)
        return runtime

    yield make
    for runtime in opened:
        await runtime.close()


KEK = generate_kek()


@pytest.fixture
async def keyturn(make_keyturn: MakeKeyturn) -> Keyturn:
    """A Keyturn on memory storage and a frozen clock, with one account."""
    return await make_keyturn()


@pytest.fixture(autouse=True)
def capture_audit(caplog: pytest.LogCaptureFixture) -> None:
    """Record audit lines in every test."""
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    """The audit events called ``name`` recorded so far."""
    found = [json.loads(r.getMessage()) for r in caplog.records if r.name == AUDIT_LOGGER]
    return [event for event in found if event["event"] == name]


def clock_of(keyturn: Keyturn) -> FrozenClock:
    """The frozen clock of a test Keyturn."""
    assert isinstance(keyturn.clock, FrozenClock)
    return keyturn.clock


async def sign_in(tokens: TokenService, **kwargs: Any) -> TokenResponse:
    """A password grant for the test account."""
    return await tokens.password_grant(EMAIL, PASSWORD, ip=IP, user_agent=UA, **kwargs)


# --- password grant ------------------------------------------------------------------


async def test_password_grant_returns_the_rfc6749_shape(
    keyturn: Keyturn, caplog: pytest.LogCaptureFixture
) -> None:
    """A right password gives access + refresh token, bearer type, lifetime and scope."""
    issued = await sign_in(keyturn.tokens, scope="read write read")
    body = issued.to_dict()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["scope"] == "read write"
    assert body["refresh_token"].startswith("ktr_")
    claims, principal = await keyturn.tokens.authenticate_bearer(issued.access_token)
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
            await keyturn.tokens.password_grant(EMAIL, "wrong", ip=IP, user_agent=UA)
    with pytest.raises(TooManyAttempts):
        await sign_in(keyturn.tokens)


async def test_password_grant_refuses_a_malformed_scope(keyturn: Keyturn) -> None:
    """A scope with a forbidden character is invalid_scope, before any hashing."""
    with pytest.raises(InvalidScope):
        await sign_in(keyturn.tokens, scope='read "quoted"')


async def test_password_grant_keeps_to_the_clients_scopes(make_keyturn: MakeKeyturn) -> None:
    """A client gets the default scopes plus those it was registered with, and a
    scope outside them is invalid_scope, checked before the password (#10 item 10c)."""
    keyturn = await make_keyturn(default_scopes=["openid", "profile"])
    app = await keyturn.clients.add("app", scopes=["notes:read"])
    assert app.client.allowed_scopes == ("openid", "profile", "notes:read")
    issued = await sign_in(keyturn.tokens, scope="openid notes:read", client_id=app.client.id)
    assert issued.scope == issued.claims.scope == "openid notes:read"
    for scope in ("notes:read notes:write", "admin", "email"):
        with pytest.raises(InvalidScope):
            await sign_in(keyturn.tokens, scope=scope, client_id=app.client.id)
    with pytest.raises(InvalidScope):  # refused before the password is even checked
        await keyturn.tokens.password_grant(
            EMAIL, "wrong", scope="admin", client_id=app.client.id, ip=IP, user_agent=UA
        )
    with pytest.raises(InvalidClient):
        await sign_in(keyturn.tokens, scope="openid", client_id="no-such-client")


async def test_first_party_password_grant_keeps_to_the_default_scopes(
    make_keyturn: MakeKeyturn,
) -> None:
    """Without a client_id the grant may ask only for --default-scopes: anything
    else, say an "admin" scope an API checks, is invalid_scope (#10 item 10c)."""
    keyturn = await make_keyturn(default_scopes=["openid", "notes:read"])
    issued = await sign_in(keyturn.tokens, scope="notes:read openid")
    assert issued.scope == "notes:read openid"
    assert (await sign_in(keyturn.tokens)).scope == ""
    for scope in ("admin", "notes:read notes:write", "profile"):
        with pytest.raises(InvalidScope):
            await sign_in(keyturn.tokens, scope=scope)


async def test_a_client_without_its_own_scopes_follows_the_default_scopes(
    make_keyturn: MakeKeyturn,
) -> None:
    """A client stored before clients had scopes (allowed_scopes None, as migration
    0007 leaves wave-1 clients) keeps working with --default-scopes (#10 item 10c)."""
    keyturn = await make_keyturn(default_scopes=["openid", "notes:read"])
    await keyturn.storage.clients.add(Client("wave-1", "old app", False, 1.0))
    issued = await sign_in(keyturn.tokens, scope="notes:read", client_id="wave-1")
    assert issued.claims.client_id == "wave-1"
    with pytest.raises(InvalidScope):
        await sign_in(keyturn.tokens, scope="notes:write", client_id="wave-1")


# --- refresh rotation ------------------------------------------------------------------


async def test_refresh_rotates_and_kills_the_old_token(keyturn: Keyturn) -> None:
    """R1 -> R2 with a new access token; R1 after the grace window is invalid_grant."""
    first = await sign_in(keyturn.tokens)
    clock_of(keyturn).advance(60)
    second = await keyturn.tokens.refresh_grant(first.refresh_token, ip=IP)
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    assert second.claims.sid == first.claims.sid
    clock_of(keyturn).advance(keyturn.settings.refresh_grace + 1)
    with pytest.raises(InvalidGrant):
        await keyturn.tokens.refresh_grant(first.refresh_token)


async def test_refresh_within_grace_returns_the_same_pair(keyturn: Keyturn) -> None:
    """A repeat inside the grace window gets the very same successor pair."""
    first = await sign_in(keyturn.tokens)
    a = await keyturn.tokens.refresh_grant(first.refresh_token)
    clock_of(keyturn).advance(keyturn.settings.refresh_grace - 1)
    b = await keyturn.tokens.refresh_grant(first.refresh_token)
    assert (a.access_token, a.refresh_token) == (b.access_token, b.refresh_token)
    assert b.expires_in == a.expires_in - (keyturn.settings.refresh_grace - 1)


async def _race_and_replay(keyturn: Keyturn, caplog: pytest.LogCaptureFixture) -> None:
    first = await sign_in(keyturn.tokens)
    results = await asyncio.gather(
        *(keyturn.tokens.refresh_grant(first.refresh_token) for _ in range(4))
    )
    pairs = {(r.access_token, r.refresh_token) for r in results}
    assert len(pairs) == 1, "every parallel refresh gets the same successor pair"
    successor = results[0]
    # The family survives: the successor refreshes normally.
    third = await keyturn.tokens.refresh_grant(successor.refresh_token)
    await keyturn.tokens.authenticate_bearer(third.access_token)
    # A replay of the first token after the grace window kills the whole family.
    clock_of(keyturn).advance(keyturn.settings.refresh_grace + 1)
    with pytest.raises(InvalidGrant):
        await keyturn.tokens.refresh_grant(first.refresh_token)
    with pytest.raises(InvalidGrant):
        await keyturn.tokens.refresh_grant(third.refresh_token)
    with pytest.raises(InvalidToken):
        await keyturn.tokens.authenticate_bearer(third.access_token)
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
        issued = await sign_in(one.tokens)
        calls = [
            instance.tokens.refresh_grant(issued.refresh_token)
            for _ in range(4)
            for instance in (one, two)
        ]
        results = await asyncio.gather(*calls)
        assert len({r.refresh_token for r in results}) == 1
        families = await one.tokens.list_families((await one.accounts.list())[0].id)
        assert len(families) == 1
    finally:
        await first_storage.close()
        await second_storage.close()


async def test_replayed_family_tokens_are_accepted_in_stateless_mode(
    make_keyturn: MakeKeyturn,
) -> None:
    """Stateless mode skips the access-token revocation check (refresh still dies)."""
    keyturn = await make_keyturn(revocation_mode="stateless")
    first = await sign_in(keyturn.tokens)
    second = await keyturn.tokens.refresh_grant(first.refresh_token)
    clock_of(keyturn).advance(keyturn.settings.refresh_grace + 1)
    with pytest.raises(InvalidGrant):
        await keyturn.tokens.refresh_grant(first.refresh_token)
    with pytest.raises(InvalidGrant):
        await keyturn.tokens.refresh_grant(second.refresh_token)
    await keyturn.tokens.authenticate_bearer(second.access_token)  # accepted: stateless
    assert keyturn.revocations.is_sid_revoked(second.claims.sid)  # but recorded


async def test_sliding_expiry_with_an_absolute_cap(make_keyturn: MakeKeyturn) -> None:
    """Each refresh extends the idle lifetime, never past refresh_max_age."""
    keyturn = await make_keyturn(refresh_token_ttl=1000, refresh_max_age=2500)
    clock = clock_of(keyturn)
    current = await sign_in(keyturn.tokens)
    for _ in range(2):  # t = 900, 1800: each refresh is inside the idle window
        clock.advance(900)
        current = await keyturn.tokens.refresh_grant(current.refresh_token)
    clock.advance(800)  # t = 2600: idle window still open (1800 + 1000) but past the cap
    with pytest.raises(InvalidGrant):
        await keyturn.tokens.refresh_grant(current.refresh_token)


async def test_refresh_expires_from_disuse(make_keyturn: MakeKeyturn) -> None:
    """A refresh token unused for refresh_token_ttl is invalid_grant."""
    keyturn = await make_keyturn(refresh_token_ttl=1000, refresh_max_age=5000)
    issued = await sign_in(keyturn.tokens)
    clock_of(keyturn).advance(1000)
    with pytest.raises(InvalidGrant):
        await keyturn.tokens.refresh_grant(issued.refresh_token)
    assert await keyturn.tokens.list_families(issued.claims.sub) == []


async def test_refresh_of_a_disabled_user_fails(keyturn: Keyturn) -> None:
    """Disabling a user ends its families: refresh is invalid_grant, tokens refused."""
    issued = await sign_in(keyturn.tokens)
    await keyturn.auth.disable_user(EMAIL)
    with pytest.raises(InvalidGrant):
        await keyturn.tokens.refresh_grant(issued.refresh_token)
    with pytest.raises(InvalidToken):
        await keyturn.tokens.authenticate_bearer(issued.access_token)


async def test_refresh_is_bound_to_its_client(keyturn: Keyturn) -> None:
    """A family issued to one client cannot be refreshed by another (or by none,
    for a confidential client)."""
    gateway = await keyturn.clients.add("gw", confidential=True)
    other = await keyturn.clients.add("spa")
    issued = await sign_in(keyturn.tokens, client_id=gateway.client.id)
    assert issued.claims.client_id == gateway.client.id
    with pytest.raises(InvalidGrant):
        await keyturn.tokens.refresh_grant(issued.refresh_token, client_id=other.client.id)
    with pytest.raises(InvalidGrant):
        await keyturn.tokens.refresh_grant(issued.refresh_token)
    await keyturn.tokens.refresh_grant(issued.refresh_token, client_id=gateway.client.id)


async def test_garbage_and_tampered_refresh_tokens_are_invalid_grant(keyturn: Keyturn) -> None:
    """One changed character, a JWT, or junk: invalid_grant."""
    issued = await sign_in(keyturn.tokens)
    token = issued.refresh_token
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (tampered, issued.access_token, "", "ktr_", "x" * 10_000):
        with pytest.raises(InvalidGrant):
            await keyturn.tokens.refresh_grant(bad)


# --- bearer authentication ---------------------------------------------------------


async def test_refresh_token_is_never_an_access_token(keyturn: Keyturn) -> None:
    """A refresh token presented as a bearer token is refused."""
    issued = await sign_in(keyturn.tokens)
    with pytest.raises(InvalidToken):
        await keyturn.tokens.authenticate_bearer(issued.refresh_token)


async def test_bearer_hot_path_reads_no_store(keyturn: Keyturn) -> None:
    """Within the staleness bound, repeated bearer checks touch neither the user store
    nor the revocation store."""
    issued = await sign_in(keyturn.tokens)
    await keyturn.tokens.authenticate_bearer(issued.access_token)
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
        await keyturn.tokens.authenticate_bearer(issued.access_token)
    assert calls == []
    clock_of(keyturn).advance(keyturn.settings.staleness_bound)
    await keyturn.tokens.authenticate_bearer(issued.access_token)
    assert sorted(calls) == ["revocations", "user"]


# --- revocation and introspection ---------------------------------------------------


async def test_revoke_access_token_denies_only_it(keyturn: Keyturn) -> None:
    """RFC 7009 on an access token: that token dies, its family lives on."""
    issued = await sign_in(keyturn.tokens)
    await keyturn.tokens.revoke(issued.access_token, "refresh_token")  # wrong hint still works
    with pytest.raises(InvalidToken):
        await keyturn.tokens.authenticate_bearer(issued.access_token)
    fresh = await keyturn.tokens.refresh_grant(issued.refresh_token)
    await keyturn.tokens.authenticate_bearer(fresh.access_token)


async def test_revoke_refresh_token_kills_family_and_its_access_tokens(keyturn: Keyturn) -> None:
    """RFC 7009 on a refresh token: the family and its access tokens die."""
    issued = await sign_in(keyturn.tokens)
    await keyturn.tokens.revoke(issued.refresh_token)
    with pytest.raises(InvalidGrant):
        await keyturn.tokens.refresh_grant(issued.refresh_token)
    with pytest.raises(InvalidToken):
        await keyturn.tokens.authenticate_bearer(issued.access_token)


async def test_revoke_unknown_tokens_is_fine(keyturn: Keyturn) -> None:
    """Unknown, garbage and already-revoked tokens revoke without error."""
    issued = await sign_in(keyturn.tokens)
    for value in ("garbage", "ktr_" + "A" * 43, "a.b.c", "", issued.refresh_token):
        await keyturn.tokens.revoke(value)
    await keyturn.tokens.revoke(issued.refresh_token)


async def test_revoke_is_bound_to_the_tokens_client(
    keyturn: Keyturn, caplog: pytest.LogCaptureFixture
) -> None:
    """Another client's revoke leaves the token alive (audited as refused); a
    confidential client's token without its client is InvalidClient; its own
    client revokes it (RFC 7009 section 2.1; #10 item 4)."""
    gateway = await keyturn.clients.add("gw", confidential=True)
    other = await keyturn.clients.add("other", confidential=True)
    issued = await sign_in(keyturn.tokens, client_id=gateway.client.id)
    for token in (issued.refresh_token, issued.access_token):
        await keyturn.tokens.revoke(token, client_id=other.client.id)
        with pytest.raises(InvalidClient):
            await keyturn.tokens.revoke(token)
    await keyturn.tokens.authenticate_bearer(issued.access_token)
    refused = events(caplog, "token_revoked")
    assert [e["outcome"] for e in refused] == ["refused", "refused"]
    assert {e["kind"] for e in refused} == {"refresh", "access"}
    assert all(e["client_id"] == other.client.id for e in refused)
    await keyturn.tokens.revoke(issued.refresh_token, client_id=gateway.client.id)
    with pytest.raises(InvalidGrant):
        await keyturn.tokens.refresh_grant(issued.refresh_token, client_id=gateway.client.id)
    with pytest.raises(InvalidToken):
        await keyturn.tokens.authenticate_bearer(issued.access_token)
    first_party = await sign_in(keyturn.tokens)
    await keyturn.tokens.revoke(first_party.access_token, client_id=other.client.id)
    await keyturn.tokens.authenticate_bearer(first_party.access_token)
    await keyturn.tokens.revoke(first_party.access_token)
    with pytest.raises(InvalidToken):
        await keyturn.tokens.authenticate_bearer(first_party.access_token)


async def test_introspect_active_access_and_refresh_tokens(keyturn: Keyturn) -> None:
    """Live tokens introspect with the RFC 7662 members and their token_type."""
    client = await keyturn.clients.add("spa", scopes=["read"])
    issued = await sign_in(keyturn.tokens, scope="read", client_id=client.client.id)
    access = await keyturn.tokens.introspect(issued.access_token)
    assert access["active"] is True and access["token_type"] == "access_token"
    for name in ("sub", "exp", "iat", "iss", "aud", "jti", "scope"):
        assert name in access
    assert access["scope"] == "read" and access["client_id"] == client.client.id
    assert access["exp"] == issued.claims.exp and access["jti"] == issued.claims.jti
    refresh = await keyturn.tokens.introspect(issued.refresh_token)
    assert refresh["active"] is True and refresh["token_type"] == "refresh_token"
    assert refresh["sub"] == issued.claims.sub and refresh["client_id"] == client.client.id


async def test_introspect_inactive_is_exactly_active_false(keyturn: Keyturn) -> None:
    """Garbage, revoked, used and expired tokens are exactly {"active": false}."""
    issued = await sign_in(keyturn.tokens)
    assert await keyturn.tokens.introspect("garbage") == {"active": False}
    successor = await keyturn.tokens.refresh_grant(issued.refresh_token)
    assert await keyturn.tokens.introspect(issued.refresh_token) == {"active": False}
    await keyturn.tokens.revoke(successor.access_token)
    assert await keyturn.tokens.introspect(successor.access_token) == {"active": False}
    clock_of(keyturn).advance(keyturn.settings.access_token_ttl + 60)
    assert await keyturn.tokens.introspect(issued.access_token) == {"active": False}


async def test_introspect_checks_revocation_even_in_stateless_mode(
    make_keyturn: MakeKeyturn,
) -> None:
    """Introspection is the strict path for downstream services, whatever the mode."""
    keyturn = await make_keyturn(revocation_mode="stateless")
    issued = await sign_in(keyturn.tokens)
    await keyturn.tokens.revoke(issued.access_token)
    await keyturn.tokens.authenticate_bearer(issued.access_token)
    assert await keyturn.tokens.introspect(issued.access_token) == {"active": False}


# --- session tokens and sign-outs ------------------------------------------------------


async def test_session_token_is_bound_to_the_session(keyturn: Keyturn) -> None:
    """A session's token carries its handle as sid, has no refresh token, and dies
    when the session is signed out."""
    _, session = await keyturn.auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    validated = await keyturn.sessions.validate(session.secret)
    issued = await keyturn.tokens.session_token(validated)
    assert issued.claims.sid == session.session.handle
    assert set(issued.to_dict()) == {"access_token", "token_type", "expires_in"}
    await keyturn.tokens.authenticate_bearer(issued.access_token)
    await keyturn.auth.sign_out(session.secret, ip=IP, user_agent=UA)
    with pytest.raises(InvalidToken):
        await keyturn.tokens.authenticate_bearer(issued.access_token)


async def test_session_token_never_outlives_the_session(make_keyturn: MakeKeyturn) -> None:
    """The token's lifetime is capped by the session's idle window and absolute end."""
    keyturn = await make_keyturn(session_idle_timeout=600, session_max_age=1000)
    clock = clock_of(keyturn)
    _, session = await keyturn.auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    validated = await keyturn.sessions.validate(session.secret)
    assert (await keyturn.tokens.session_token(validated)).expires_in == 600
    clock.advance(500)
    validated = await keyturn.sessions.validate(session.secret)
    assert (await keyturn.tokens.session_token(validated)).expires_in == 500
    clock.advance(499.5)
    with pytest.raises(NotAuthenticated):
        await keyturn.tokens.session_token(validated)


async def test_logout_token_revokes_it_and_its_family(keyturn: Keyturn) -> None:
    """Bearer logout: that token and its refresh family end."""
    issued = await sign_in(keyturn.tokens)
    await keyturn.tokens.logout_token(issued.claims)
    with pytest.raises(InvalidToken):
        await keyturn.tokens.authenticate_bearer(issued.access_token)
    with pytest.raises(InvalidGrant):
        await keyturn.tokens.refresh_grant(issued.refresh_token)


async def test_logout_all_kills_families_sessions_and_access_tokens(keyturn: Keyturn) -> None:
    """logout-all ends every browser session, every family and every access token."""
    one, two = await sign_in(keyturn.tokens), await sign_in(keyturn.tokens)
    _, session = await keyturn.auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    from_session = await keyturn.tokens.session_token(
        await keyturn.sessions.validate(session.secret)
    )
    await keyturn.tokens.logout_all(one.claims.sub)
    for issued in (one, two):
        with pytest.raises(InvalidGrant):
            await keyturn.tokens.refresh_grant(issued.refresh_token)
    for access in (one.access_token, two.access_token, from_session.access_token):
        with pytest.raises(InvalidToken):
            await keyturn.tokens.authenticate_bearer(access)
    with pytest.raises(NotAuthenticated):
        await keyturn.sessions.validate(session.secret)
    assert await keyturn.tokens.list_families(one.claims.sub) == []
    clock_of(keyturn).advance(1)  # a new sign-in after the cut-off works
    again = await sign_in(keyturn.tokens)
    await keyturn.tokens.authenticate_bearer(again.access_token)


async def test_token_password_change_keeps_only_the_callers_family(keyturn: Keyturn) -> None:
    """A bearer password change ends other families and every earlier access token,
    and keeps the caller's family for a fresh access token."""
    mine, other = await sign_in(keyturn.tokens), await sign_in(keyturn.tokens)
    clock_of(keyturn).advance(1)
    await keyturn.tokens.change_password(mine.claims, PASSWORD, "a brand new passphrase")
    with pytest.raises(InvalidToken):
        await keyturn.tokens.authenticate_bearer(mine.access_token)
    with pytest.raises(InvalidGrant):
        await keyturn.tokens.refresh_grant(other.refresh_token)
    clock_of(keyturn).advance(1)
    fresh = await keyturn.tokens.refresh_grant(mine.refresh_token)
    await keyturn.tokens.authenticate_bearer(fresh.access_token)


async def test_session_password_change_ends_token_sign_ins(keyturn: Keyturn) -> None:
    """The session password change also revokes families and earlier access tokens."""
    issued = await sign_in(keyturn.tokens)
    _, session = await keyturn.auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=UA)
    clock_of(keyturn).advance(1)
    await keyturn.auth.change_password(session.secret, PASSWORD, "a brand new passphrase")
    with pytest.raises(InvalidGrant):
        await keyturn.tokens.refresh_grant(issued.refresh_token)
    with pytest.raises(InvalidToken):
        await keyturn.tokens.authenticate_bearer(issued.access_token)


async def test_list_and_revoke_families(keyturn: Keyturn) -> None:
    """Families are listed per user; revoking another user's family is NotFound."""
    issued = await sign_in(keyturn.tokens)
    [family] = await keyturn.tokens.list_families(issued.claims.sub)
    assert family.id == issued.claims.sid and family.ip == IP and family.user_agent == UA
    with pytest.raises(NotFound):
        await keyturn.tokens.revoke_family("someone-else", family.id)
    with pytest.raises(NotFound):
        await keyturn.tokens.revoke_family(issued.claims.sub, "missing")
    await keyturn.tokens.revoke_family(issued.claims.sub, family.id)
    assert await keyturn.tokens.list_families(issued.claims.sub) == []
    with pytest.raises(InvalidToken):
        await keyturn.tokens.authenticate_bearer(issued.access_token)


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
        pairs.append(await sign_in(keyturn.tokens))
        clock.advance(1)
    oldest, *newer = pairs
    with pytest.raises(InvalidGrant):
        await keyturn.tokens.refresh_grant(oldest.refresh_token)
    with pytest.raises(InvalidToken):
        await keyturn.tokens.authenticate_bearer(oldest.access_token)
    [event] = events(caplog, "session_evicted")
    assert event["session"] == oldest.claims.sid and event["via"] == "token"
    assert event["reason"] == "max_refresh_families_per_user" and event["ip"] == IP
    listed = await keyturn.tokens.list_families(oldest.claims.sub)
    assert [f.id for f in listed] == [pair.claims.sid for pair in newer]
    for pair in newer:
        await keyturn.tokens.authenticate_bearer(pair.access_token)
        await keyturn.tokens.refresh_grant(pair.refresh_token)


async def test_bearer_follows_a_key_rotated_by_another_instance(make_keyturn: MakeKeyturn) -> None:
    """A token signed with a key another instance just rotated in is accepted at once:
    the unknown kid makes this instance re-read the key store (rate-limited)."""
    storage = MemoryStorage()
    clock = FrozenClock()
    one = await make_keyturn(storage, clock)
    other = await make_keyturn(storage, clock)
    await other.keys.rotate()
    granted = await other.tokens.password_grant(
        EMAIL, PASSWORD, scope="", client_id=None, ip=IP, user_agent=UA
    )
    claims, principal = await one.tokens.authenticate_bearer(granted.access_token)
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
    granted = await keyturn.tokens.password_grant(
        EMAIL, PASSWORD, scope="", client_id=None, ip=IP, user_agent=UA
    )
    header, payload, signature = granted.access_token.split(".")
    forged_header = json.loads(base64.urlsafe_b64decode(header + "=="))
    for attempt in range(20):
        forged_header["kid"] = f"unknown-{attempt}"
        encoded = base64.urlsafe_b64encode(json.dumps(forged_header).encode()).rstrip(b"=").decode()
        with pytest.raises(InvalidToken):
            await keyturn.tokens.authenticate_bearer(f"{encoded}.{payload}.{signature}")
    assert reads <= 1
