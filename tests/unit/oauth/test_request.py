"""Authorization request validation: which errors never redirect, which are
redirected with state, and every parameter rule (RFC 6749 sections 3.1 and
4.1.2.1, RFC 7636, OIDC Core 3.1.2.1)."""

from __future__ import annotations

import pytest
from tests.unit.oauth.support import CHALLENGE, FakeClient, good_params

from keyturn.errors import (
    AuthorizationInvalidRequest,
    AuthorizationInvalidScope,
    RedirectedAuthorizationError,
    UnauthorizedClient,
    UnknownAuthorizationClient,
    UnregisteredRedirectUri,
    UnsafeAuthorizationRequest,
    UnsupportedResponseType,
)
from keyturn.oauth.request import (
    AuthorizationClient,
    parse_authorization_request,
    read_client_id,
    validate_authorization_request,
)


def redirected(params: object, client: FakeClient) -> RedirectedAuthorizationError:
    """The redirected error that validating ``params`` raises."""
    with pytest.raises(RedirectedAuthorizationError) as caught:
        validate_authorization_request(params, client)  # type: ignore[arg-type]
    return caught.value


def test_valid_request_parses_into_every_field(client: FakeClient) -> None:
    """Every parameter lands in the dataclass, scopes deduplicated in order."""
    params = good_params(
        scope="openid email openid",
        nonce="n-0S6_WzA2Mj",
        prompt="login consent",
        max_age="300",
        login_hint="ada@example.com",
    )
    request = validate_authorization_request(params, client)
    assert request.client_id == "spa"
    assert request.redirect_uri == "https://app.example.com/cb"
    assert request.scopes == ("openid", "email")
    assert request.state == "xyz"
    assert request.code_challenge == CHALLENGE
    assert request.nonce == "n-0S6_WzA2Mj"
    assert request.prompt == frozenset({"login", "consent"})
    assert request.max_age == 300
    assert request.login_hint == "ada@example.com"


def test_to_params_round_trips(client: FakeClient) -> None:
    """to_params() validates back to the same request (PAR, return from /login)."""
    request = validate_authorization_request(
        good_params(nonce="n", prompt="consent", max_age="0"), client
    )
    assert validate_authorization_request(request.to_params(), client) == request


async def test_parse_looks_the_client_up_by_client_id(client: FakeClient) -> None:
    """The async entry point asks the lookup for the request's client_id."""
    asked: list[str] = []

    async def lookup(client_id: str) -> AuthorizationClient | None:
        asked.append(client_id)
        return client

    request = await parse_authorization_request(iter(good_params().items()), lookup)
    assert asked == ["spa"] and request.client_id == "spa"


async def test_unknown_client_is_not_redirected() -> None:
    """No client with this id: an error page, never a redirect."""

    async def lookup(client_id: str) -> AuthorizationClient | None:
        return None

    with pytest.raises(UnknownAuthorizationClient) as caught:
        await parse_authorization_request(good_params(), lookup)
    assert isinstance(caught.value, UnsafeAuthorizationRequest)
    assert not isinstance(caught.value, RedirectedAuthorizationError)


@pytest.mark.parametrize(
    "pairs",
    [
        [("client_id", "spa"), ("client_id", "other")],
        [("client_id", "")],
        [("response_type", "code")],
        [("client_id", "a b")],
    ],
)
def test_missing_repeated_or_malformed_client_id_is_not_redirected(
    pairs: list[tuple[str, str]],
) -> None:
    """client_id must be there exactly once before anything can be redirected."""
    with pytest.raises(UnsafeAuthorizationRequest):
        read_client_id(pairs)


def test_client_record_for_another_id_is_refused(client: FakeClient) -> None:
    """A lookup that returns the wrong client cannot authorize this client_id."""
    with pytest.raises(UnknownAuthorizationClient):
        validate_authorization_request(good_params(client_id="other"), client)


@pytest.mark.parametrize(
    "redirect_uri",
    ["https://evil.example/cb", "https://app.example.com/cb/", "https://app.example.com/cb?x=1"],
)
def test_unregistered_redirect_uri_is_not_redirected(client: FakeClient, redirect_uri: str) -> None:
    """A redirect URI the client did not register gets the error page."""
    with pytest.raises(UnregisteredRedirectUri) as caught:
        validate_authorization_request(good_params(redirect_uri=redirect_uri), client)
    assert not isinstance(caught.value, RedirectedAuthorizationError)


def test_missing_redirect_uri_is_not_redirected(client: FakeClient) -> None:
    """No redirect_uri: nowhere trusted to redirect to."""
    params = good_params()
    del params["redirect_uri"]
    with pytest.raises(UnsafeAuthorizationRequest, match="required"):
        validate_authorization_request(params, client)


def test_repeated_redirect_uri_is_not_redirected(client: FakeClient) -> None:
    """Two redirect_uri values, even both registered, are ambiguous: no redirect."""
    pairs = [*good_params().items(), ("redirect_uri", "http://127.0.0.1/callback")]
    with pytest.raises(UnsafeAuthorizationRequest, match="repeated"):
        validate_authorization_request(pairs, client)


def test_loopback_redirect_on_an_ephemeral_port_is_accepted(client: FakeClient) -> None:
    """A CLI's http://127.0.0.1:PORT/callback matches its port-less registration."""
    uri = "http://127.0.0.1:49152/callback"
    request = validate_authorization_request(good_params(redirect_uri=uri), client)
    assert request.redirect_uri == uri


def test_repeated_parameter_is_invalid_request_redirected_with_state(client: FakeClient) -> None:
    """A repeated scope is invalid_request (RFC 6749 3.1), sent to the client."""
    pairs = [*good_params().items(), ("scope", "email")]
    error = redirected(pairs, client)
    assert isinstance(error, AuthorizationInvalidRequest)
    assert error.code == "invalid_request"
    assert error.redirect_uri == "https://app.example.com/cb"
    assert error.state == "xyz"
    assert "scope" in error.detail


def test_repeated_state_is_redirected_without_echoing_either_value(client: FakeClient) -> None:
    """With two states the error goes back with no state rather than a guess."""
    pairs = [*good_params().items(), ("state", "other")]
    error = redirected(pairs, client)
    assert error.code == "invalid_request" and error.state is None


def test_unrecognized_parameters_are_ignored_even_when_repeated(client: FakeClient) -> None:
    """RFC 6749 3.1: unknown parameters are ignored."""
    pairs = [*good_params().items(), ("foo", "1"), ("foo", "2")]
    assert validate_authorization_request(pairs, client).client_id == "spa"


def test_empty_value_counts_as_absent(client: FakeClient) -> None:
    """scope= is the same as no scope (RFC 6749 3.1)."""
    assert validate_authorization_request(good_params(scope=""), client).scopes == ()


@pytest.mark.parametrize("response_type", ["token", "code id_token", "id_token"])
def test_other_response_types_are_unsupported(client: FakeClient, response_type: str) -> None:
    """Only response_type=code exists in OAuth 2.1."""
    error = redirected(good_params(response_type=response_type), client)
    assert isinstance(error, UnsupportedResponseType)
    assert error.code == "unsupported_response_type" and error.state == "xyz"


def test_missing_response_type_is_invalid_request(client: FakeClient) -> None:
    """No response_type at all is a malformed request."""
    params = good_params()
    del params["response_type"]
    assert redirected(params, client).code == "invalid_request"


def test_client_without_the_code_grant_is_unauthorized(client: FakeClient) -> None:
    """A client_credentials-only client cannot use /authorize."""
    machine = FakeClient(grant_types=("client_credentials",))
    error = redirected(good_params(), machine)
    assert isinstance(error, UnauthorizedClient) and error.code == "unauthorized_client"


@pytest.mark.parametrize(
    "overrides",
    [
        {"code_challenge_method": "plain"},
        {"code_challenge_method": ""},
        {"code_challenge": ""},
        {"code_challenge": "short"},
    ],
)
def test_pkce_problems_are_invalid_request_redirected(
    client: FakeClient, overrides: dict[str, str]
) -> None:
    """plain, a missing method or a missing challenge: invalid_request, redirected."""
    error = redirected(good_params(**overrides), client)
    assert isinstance(error, AuthorizationInvalidRequest)
    assert error.redirect_uri == "https://app.example.com/cb" and error.state == "xyz"


@pytest.mark.parametrize("scope", ["openid admin", 'openid "quoted"', "x" * 1025])
def test_scope_outside_the_allowlist_or_malformed_is_invalid_scope(
    client: FakeClient, scope: str
) -> None:
    """A scope the client may not ask for, or bad syntax, is invalid_scope."""
    error = redirected(good_params(scope=scope), client)
    assert isinstance(error, AuthorizationInvalidScope) and error.code == "invalid_scope"
    assert error.state == "xyz"


@pytest.mark.parametrize("prompt", ["none login", "none consent", "login none"])
def test_prompt_none_with_other_values_is_invalid_request(client: FakeClient, prompt: str) -> None:
    """prompt=none promises no page, so it cannot be combined (OIDC Core 3.1.2.1)."""
    error = redirected(good_params(prompt=prompt), client)
    assert error.code == "invalid_request" and "none" in error.detail


def test_prompt_none_alone_is_accepted(client: FakeClient) -> None:
    """prompt=none on its own parses."""
    assert validate_authorization_request(good_params(prompt="none"), client).prompt == {"none"}


def test_unknown_prompt_value_is_invalid_request(client: FakeClient) -> None:
    """keyturn supports none, login and consent only."""
    assert redirected(good_params(prompt="select_account"), client).code == "invalid_request"


@pytest.mark.parametrize("max_age", ["-1", "1.5", "ten", "1" * 11])
def test_max_age_must_be_whole_seconds(client: FakeClient, max_age: str) -> None:
    """max_age is a non-negative integer."""
    assert redirected(good_params(max_age=max_age), client).code == "invalid_request"


@pytest.mark.parametrize(
    ("name", "value"),
    [("nonce", "x" * 513), ("nonce", "bad\nnonce"), ("login_hint", "x" * 257)],
)
def test_oversized_or_control_character_values_are_refused(
    client: FakeClient, name: str, value: str
) -> None:
    """nonce and login_hint are bounded printable text."""
    assert redirected(good_params(**{name: value}), client).code == "invalid_request"


def test_malformed_state_is_refused_and_not_reflected(client: FakeClient) -> None:
    """A state with control characters is invalid_request and is not echoed."""
    error = redirected(good_params(state="a\r\nb"), client)
    assert error.code == "invalid_request" and error.state is None


@pytest.mark.parametrize(
    ("name", "value"),
    [("request", "eyJ..."), ("request_uri", "urn:x"), ("response_mode", "fragment")],
)
def test_unsupported_request_features_are_invalid_request(
    client: FakeClient, name: str, value: str
) -> None:
    """Request objects, an unresolved request_uri and non-query modes are refused."""
    assert redirected(good_params(**{name: value}), client).code == "invalid_request"
