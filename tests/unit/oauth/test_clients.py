"""The client model (#12 item 1): what a client is registered with, and that the
record is what the authorization code flow reads."""

from __future__ import annotations

import pytest
from tests.unit.oauth.support import CHALLENGE

from keyturn.clock import FrozenClock
from keyturn.errors import InvalidClientMetadata, InvalidRedirectUri, UnauthorizedClient
from keyturn.oauth.clients import Clients
from keyturn.oauth.registration import DEFAULT_GRANT_TYPES, check_metadata
from keyturn.oauth.request import AuthorizationClient, validate_authorization_request
from keyturn.stores.memory import MemoryClientStore
from keyturn.stores.records import Client


@pytest.fixture
def clients() -> Clients:
    """A client registry over the memory store."""
    return Clients(MemoryClientStore(), FrozenClock())


async def test_defaults_are_public_with_code_and_refresh_grants(clients: Clients) -> None:
    """With no options a client is public, third-party, allowed the default scopes
    and the authorization_code + refresh_token grants (SPEC "Clients")."""
    created = await clients.add("SPA")
    assert created.secret is None and created.client.public
    assert created.client.first_party is False
    assert created.client.grant_types == ("authorization_code", "refresh_token")
    assert created.client.allowed_scopes == ("openid", "profile", "email", "offline_access")
    assert await clients.get(created.client.id) == created.client


async def test_every_option_is_stored(clients: Clients) -> None:
    """Each registration value reaches the stored record, duplicates dropped."""
    created = await clients.add(
        "Notes web",
        confidential=True,
        first_party=True,
        scopes=["notes:read"],
        redirect_uris=["https://notes.example/cb", "https://notes.example/cb"],
        post_logout_redirect_uris=["https://notes.example/bye"],
        grant_types=["authorization_code", "client_credentials"],
        backchannel_logout_uri="https://notes.example/bc",
        id_token_alg="EdDSA",
    )
    stored = await clients.get(created.client.id)
    assert stored is not None and created.secret is not None
    assert stored.confidential and stored.first_party
    assert stored.redirect_uris == ("https://notes.example/cb",)
    assert stored.post_logout_redirect_uris == ("https://notes.example/bye",)
    assert stored.grant_types == ("authorization_code", "client_credentials")
    assert stored.allowed_scopes[-1] == "notes:read"
    assert stored.backchannel_logout_uri == "https://notes.example/bc"
    assert stored.id_token_alg == "EdDSA"


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("http://app.example/cb", "must use https"),
        ("https://app.example/cb#frag", "fragment"),
        ("https://*.example/cb", "wildcard"),
        ("http://localhost/cb", "use http://127.0.0.1"),
        ("/relative", "not absolute"),
    ],
)
async def test_bad_redirect_uris_are_refused_in_one_line(
    clients: Clients, uri: str, reason: str
) -> None:
    """Non-loopback http, fragments, wildcards, localhost and relative URIs are
    refused with a one-line reason, and nothing is stored."""
    with pytest.raises(InvalidRedirectUri, match=reason) as caught:
        await clients.add("bad", redirect_uris=[uri])
    assert "\n" not in caught.value.detail
    assert await clients.list() == []


@pytest.mark.parametrize(
    "uri", ["http://127.0.0.1/cb", "http://[::1]:8123/cb", "https://a.example/"]
)
def test_loopback_http_and_https_redirects_are_accepted(uri: str) -> None:
    """http on the loopback literals (any port) and https are registrable (RFC 8252)."""
    assert check_metadata(confidential=False, redirect_uris=[uri]).redirect_uris == (uri,)


def test_post_logout_uris_follow_the_redirect_rules() -> None:
    """A post-logout URI is held to the redirect rules, named as what it is."""
    with pytest.raises(InvalidRedirectUri, match=r"post-logout URI .* fragment"):
        check_metadata(confidential=False, post_logout_redirect_uris=["https://a.example/#x"])


def test_client_credentials_needs_a_confidential_client() -> None:
    """A public client cannot be given client_credentials: it has no secret."""
    with pytest.raises(InvalidClientMetadata, match="confidential"):
        check_metadata(confidential=False, grant_types=["client_credentials"])
    granted = check_metadata(confidential=True, grant_types=["client_credentials"])
    assert granted.grant_types == ("client_credentials",)


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"grant_types": ["implicit"]}, "unknown grant type 'implicit'"),
        ({"grant_types": []}, "at least one grant"),
        ({"id_token_alg": "HS256"}, "unknown ID-token algorithm 'HS256'"),
        ({"backchannel_logout_uri": "http://rp.example/bc"}, "back-channel logout URI"),
    ],
)
def test_bad_metadata_is_refused_in_one_line(options: dict[str, object], reason: str) -> None:
    """Unknown grants or algorithms, no grant, and a non-https back-channel URI
    are invalid_client_metadata with a one-line reason."""
    with pytest.raises(InvalidClientMetadata, match=reason) as caught:
        check_metadata(confidential=True, **options)
    assert caught.value.code == "invalid_client_metadata" and "\n" not in caught.value.detail


def test_no_grants_named_means_the_defaults() -> None:
    """grant_types None is the SPEC default set."""
    assert check_metadata(confidential=False).grant_types == DEFAULT_GRANT_TYPES


async def test_remove_deletes_the_client(clients: Clients) -> None:
    """remove() deletes the client; a malformed or unknown id is just False."""
    created = await clients.add("SPA")
    assert await clients.remove(created.client.id) is True
    assert await clients.get(created.client.id) is None
    assert await clients.remove(created.client.id) is False
    assert await clients.remove("not an id!") is False


async def test_the_record_is_an_authorization_client(clients: Clients) -> None:
    """The stored record goes straight into the authorization request parser:
    its redirect URIs, scopes and grants are what the parser checks."""
    created = await clients.add("SPA", redirect_uris=["http://127.0.0.1/cb"])
    record: AuthorizationClient = created.client
    request = validate_authorization_request(
        {
            "response_type": "code",
            "client_id": created.client.id,
            "redirect_uri": "http://127.0.0.1:49152/cb",
            "scope": "openid email",
            "code_challenge": CHALLENGE,
            "code_challenge_method": "S256",
        },
        record,
    )
    assert request.redirect_uri == "http://127.0.0.1:49152/cb"
    assert request.scopes == ("openid", "email")


def test_a_wave_one_client_cannot_use_the_code_flow() -> None:
    """A client from before grant types exists keeps the password and refresh
    grants only, so /oauth/authorize refuses it (unauthorized_client)."""
    old = Client("wave-1", "old", False, 1.0, redirect_uris=("https://a.example/cb",))
    assert old.grant_types == ("password", "refresh_token")
    with pytest.raises(UnauthorizedClient):
        validate_authorization_request(
            {
                "response_type": "code",
                "client_id": "wave-1",
                "redirect_uri": "https://a.example/cb",
                "code_challenge": CHALLENGE,
                "code_challenge_method": "S256",
            },
            old,
        )


def test_metadata_describes_the_code_flow_when_the_code_grant_is_served() -> None:
    """With authorization_code among the token endpoint's grants, the RFC 8414
    document names the authorization and PAR endpoints, response type code, PKCE
    S256 only and the RFC 9207 iss parameter (#12 item 5)."""
    from keyturn.web.routes.wellknown import authorization_server_metadata

    issuer = "https://id.example"
    body = authorization_server_metadata(
        issuer, grant_types=("authorization_code", "refresh_token")
    )
    assert body["authorization_endpoint"] == f"{issuer}/oauth/authorize"
    assert body["pushed_authorization_request_endpoint"] == f"{issuer}/oauth/par"
    assert body["response_types_supported"] == ["code"]
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["authorization_response_iss_parameter_supported"] is True
    assert body["grant_types_supported"] == ["authorization_code", "refresh_token"]
