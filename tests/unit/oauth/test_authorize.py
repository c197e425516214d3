"""keyturn.oauth.authorize and keyturn.oauth.fresh_login: the authorization
endpoint's decisions on memory stores, with an injected clock."""

from __future__ import annotations

import pytest
from tests.unit.oauth.support import CHALLENGE, ISSUER, VERIFIER, good_params

from keyturn.clock import FrozenClock
from keyturn.errors import ConsentRequired, InvalidRequestUri, LoginRequired
from keyturn.oauth.authorize import (
    AuthorizationEndpoint,
    NeedsConsent,
    NeedsLogin,
    Redirect,
    SignedIn,
)
from keyturn.oauth.codes import AuthorizationCodes
from keyturn.oauth.consent import Consents
from keyturn.oauth.flow_client import FlowClient
from keyturn.oauth.fresh_login import FreshLoginMarker
from keyturn.oauth.memory import MemoryCodeStore, MemoryConsentStore, MemoryPushedRequestStore
from keyturn.oauth.par import PushedRequests
from keyturn.oauth.response import append_query

FIRST = FlowClient(
    "spa", "SPA", False, True, ("https://app.example.com/cb",), {"openid", "profile"},
    {"authorization_code"},
)  # fmt: skip
THIRD = FlowClient(
    "third", "Third", False, False, ("https://third.example/cb",), {"openid", "profile"},
    {"authorization_code"},
)  # fmt: skip


def endpoint(clock: FrozenClock) -> AuthorizationEndpoint:
    clients = {client.id: client for client in (FIRST, THIRD)}

    async def lookup(client_id: str) -> FlowClient | None:
        return clients.get(client_id)

    return AuthorizationEndpoint(
        lookup=lookup,
        codes=AuthorizationCodes(MemoryCodeStore(), clock),
        consents=Consents(MemoryConsentStore(), clock),
        pushed=PushedRequests(MemoryPushedRequestStore(), clock),
        issuer=ISSUER,
        clock=clock,
    )


def third_params(**overrides: str) -> dict[str, str]:
    return good_params(client_id="third", redirect_uri="https://third.example/cb", **overrides)


async def test_signed_out_needs_login_with_the_hint(clock: FrozenClock) -> None:
    """Nobody signed in: sign in first, with login_hint passed on."""
    flow = endpoint(clock)
    loaded = await flow.load(good_params(login_hint="a@example.com"))
    outcome = await flow.decide(loaded, None)
    assert isinstance(outcome, NeedsLogin)
    assert outcome.login_hint == "a@example.com" and not outcome.fresh


async def test_first_party_signed_in_gets_a_redeemable_code(clock: FrozenClock) -> None:
    """A first-party client and a live sign-in: the redirect carries a code bound
    to the session, redeemable once with the verifier."""
    flow = endpoint(clock)
    loaded = await flow.load(good_params())
    outcome = await flow.decide(loaded, SignedIn("u1", "h" * 16, clock.now()))
    assert isinstance(outcome, Redirect)
    assert outcome.url.startswith("https://app.example.com/cb?code=")
    assert "state=xyz" in outcome.url and "iss=https%3A%2F%2Fid.example.com" in outcome.url
    code = outcome.url.split("code=")[1].split("&")[0]
    grant = await flow.codes.redeem(
        code, client_id="spa", redirect_uri="https://app.example.com/cb", code_verifier=VERIFIER
    )
    assert (grant.user_id, grant.session_id, grant.scopes) == (
        "u1",
        "h" * 16,
        ("openid", "profile"),
    )


async def test_prompt_none_never_asks(clock: FrozenClock) -> None:
    """prompt=none: login_required signed out, consent_required without a grant."""
    flow = endpoint(clock)
    with pytest.raises(LoginRequired) as signed_out:
        await flow.decide(await flow.load(good_params(prompt="none")), None)
    assert signed_out.value.redirect_uri == "https://app.example.com/cb"
    assert signed_out.value.state == "xyz"
    with pytest.raises(ConsentRequired):
        await flow.decide(
            await flow.load(third_params(prompt="none")), SignedIn("u1", "h" * 16, clock.now())
        )


async def test_consent_is_asked_once_per_scope_set(clock: FrozenClock) -> None:
    """A third-party client asks until approved, then not for the same scopes, and
    again for a new one (only the new one marked new)."""
    flow = endpoint(clock)
    user = SignedIn("u1", "h" * 16, clock.now())
    loaded = await flow.load(third_params(scope="openid"))
    first = await flow.decide(loaded, user)
    assert isinstance(first, NeedsConsent) and first.new == ("openid",)
    assert (await flow.approve(loaded, user)).startswith("https://third.example/cb?code=")
    assert isinstance(await flow.decide(loaded, user), Redirect)
    wider = await flow.decide(await flow.load(third_params(scope="openid profile")), user)
    assert isinstance(wider, NeedsConsent) and wider.new == ("profile",)
    forced = await flow.decide(
        await flow.load(third_params(scope="openid", prompt="consent")), user
    )
    assert isinstance(forced, NeedsConsent)


async def test_max_age_and_prompt_login_measure_the_sign_in(clock: FrozenClock) -> None:
    """max_age older than the sign-in, or prompt=login without a fresh marker: sign in again."""
    flow = endpoint(clock)
    user = SignedIn("u1", "h" * 16, clock.now())
    clock.advance(100)
    assert isinstance(
        await flow.decide(await flow.load(good_params(max_age="200")), user), Redirect
    )
    stale = await flow.decide(await flow.load(good_params(max_age="50")), user)
    assert isinstance(stale, NeedsLogin) and not stale.fresh
    login = await flow.load(good_params(prompt="login"))
    again = await flow.decide(login, user)
    assert isinstance(again, NeedsLogin) and again.fresh
    marker_time = clock.now()
    clock.advance(5)
    fresh = SignedIn("u1", "h" * 16, clock.now())
    assert isinstance(await flow.decide(login, fresh, fresh_since=marker_time), Redirect)
    assert isinstance(await flow.decide(login, user, fresh_since=marker_time), NeedsLogin)


async def test_pushed_request_is_loaded_once_and_only_for_its_client(clock: FrozenClock) -> None:
    """request_uri loads the pushed parameters for the pushing client, gives one code,
    and is refused afterwards or for another client."""
    flow = endpoint(clock)
    pushed = await flow.pushed.push(FIRST, good_params(state="pushed"))
    query = {"client_id": "spa", "request_uri": pushed.request_uri, "state": "ignored"}
    loaded = await flow.load(query)
    assert loaded.request.state == "pushed"
    assert loaded.to_params() == {"client_id": "spa", "request_uri": pushed.request_uri}
    with pytest.raises(InvalidRequestUri):
        await flow.load({"client_id": "third", "request_uri": pushed.request_uri})
    outcome = await flow.decide(loaded, SignedIn("u1", "h" * 16, clock.now()))
    assert isinstance(outcome, Redirect)
    with pytest.raises(InvalidRequestUri):
        await flow.load(query)


async def test_deny_is_access_denied_with_state_and_iss(clock: FrozenClock) -> None:
    """The user's "Deny": the access_denied redirect, with state and iss."""
    flow = endpoint(clock)
    url = await flow.deny(await flow.load(third_params()))
    assert url == append_query(
        "https://third.example/cb",
        {
            "error": "access_denied",
            "error_description": "The user denied the request.",
            "state": "xyz",
            "iss": ISSUER,
        },
    )


def test_fresh_login_marker_is_bound_to_time_and_request(clock: FrozenClock) -> None:
    """A marker verifies for its challenge within 15 minutes; another challenge, a
    forged MAC, another key or an old marker is None."""
    marker = FreshLoginMarker(b"k" * 32, clock)
    value = marker.make(CHALLENGE)
    assert marker.since(value, CHALLENGE) == float(int(clock.now()))
    assert marker.since(value, "A" * 43) is None
    assert FreshLoginMarker(b"x" * 32, clock).since(value, CHALLENGE) is None
    issued, mac = value.split(".")
    assert marker.since(f"{int(issued) + 1}.{mac}", CHALLENGE) is None
    assert marker.since("garbage", CHALLENGE) is None
    assert marker.since(None, CHALLENGE) is None
    clock.advance(901)
    assert marker.since(value, CHALLENGE) is None
