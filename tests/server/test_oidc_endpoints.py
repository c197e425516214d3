"""OpenID Connect endpoints, black-box: userinfo (OIDC Core 5.3, RFC 6750 errors),
the OpenID Provider metadata (OIDC Discovery 1.0 section 3 plus SPEC's list), and
RP-initiated logout (RP-Initiated Logout 1.0)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI
from tests.server.oidc_support import app, browser, oidc_client, sign_in_app
from tests.server.token_support import BASE, EMAIL, MakeClient, build_app, clock

__all__ = ["app", "browser", "build_app", "clock"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_userinfo_answers_claims_by_scope_on_get_and_post(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    """With openid + email, GET and POST give sub and email; openid alone only sub."""
    client = await oidc_client(app)
    full = await sign_in_app(browser, client, scope="openid email")
    sub = (await browser.get("/auth/whoami")).json()["sub"]
    for method in ("GET", "POST"):
        answer = await browser.request(
            method, "/oauth/userinfo", headers=bearer(full["access_token"])
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["sub"] == sub and answer.json()["email"] == EMAIL
        assert answer.headers["cache-control"] == "no-store"
    bare = await sign_in_app(browser, client, scope="openid")
    answer = await browser.get("/oauth/userinfo", headers=bearer(bare["access_token"]))
    assert answer.json() == {"sub": sub}


async def test_userinfo_refuses_missing_bad_and_insufficient_tokens(
    app: FastAPI, browser: httpx.AsyncClient, make_client: MakeClient
) -> None:
    """No token: 401 Bearer; a garbage token: 401 invalid_token; a token without
    openid: 403 insufficient_scope naming openid; the session cookie is not enough."""
    browser_only = await browser.get("/oauth/userinfo")
    assert browser_only.status_code == 401
    assert browser_only.headers["www-authenticate"].startswith("Bearer")
    async with make_client(app=app, base_url=BASE) as plain:
        missing = await plain.get("/oauth/userinfo")
        garbage = await plain.post("/oauth/userinfo", headers=bearer("not.a.token"))
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert garbage.status_code == 401
    assert 'error="invalid_token"' in garbage.headers["www-authenticate"]
    client = await oidc_client(app)
    plain_oauth = await sign_in_app(browser, client, scope="profile")
    refused = await browser.get("/oauth/userinfo", headers=bearer(plain_oauth["access_token"]))
    assert refused.status_code == 403
    assert (
        refused.headers["www-authenticate"] == 'Bearer error="insufficient_scope", scope="openid"'
    )


async def test_openid_configuration_has_every_required_and_spec_member(
    browser: httpx.AsyncClient,
) -> None:
    """Discovery's REQUIRED members and SPEC's list are present with the right values."""
    document = (await browser.get("/.well-known/openid-configuration")).json()
    assert document["issuer"] == BASE
    for path, member in (
        ("/oauth/authorize", "authorization_endpoint"),
        ("/oauth/token", "token_endpoint"),
        ("/oauth/userinfo", "userinfo_endpoint"),
        ("/oauth/logout", "end_session_endpoint"),
        ("/oauth/par", "pushed_authorization_request_endpoint"),
        ("/.well-known/jwks.json", "jwks_uri"),
    ):
        assert document[member] == BASE + path
    assert document["response_types_supported"] == ["code"]
    assert document["subject_types_supported"] == ["public"]
    assert "RS256" in document["id_token_signing_alg_values_supported"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["authorization_response_iss_parameter_supported"] is True
    assert document["backchannel_logout_supported"] is True
    assert document["backchannel_logout_session_supported"] is True
    assert set(document["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "none",
    }
    assert {"openid", "email", "offline_access"} <= set(document["scopes_supported"])
    assert {"sub", "email", "email_verified", "sid", "auth_time"} <= set(
        document["claims_supported"]
    )
    assert "authorization_code" in document["grant_types_supported"]


async def test_logout_with_a_valid_hint_ends_the_session_and_redirects_with_state(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    """A valid id_token_hint and a registered post-logout URI: the keyturn
    session ends at once and the browser goes back with state."""
    client = await oidc_client(app)
    tokens = await sign_in_app(browser, client)
    response = await browser.get(
        "/oauth/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "https://rp.example/bye",
            "state": "xyz 1",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    target = urlsplit(response.headers["location"])
    assert target.netloc == "rp.example" and parse_qs(target.query) == {"state": ["xyz 1"]}
    assert (await browser.get("/auth/whoami")).status_code == 401


async def test_logout_refuses_an_unregistered_post_logout_uri(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    """Only an exactly registered post-logout URI is followed: anything else is a
    400 page, no redirect, and the session stays."""
    client = await oidc_client(app)
    tokens = await sign_in_app(browser, client)
    for uri in ("https://evil.example/", "https://rp.example/bye/", "https://rp.example/bye?x=1"):
        response = await browser.get(
            "/oauth/logout",
            params={"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": uri},
            follow_redirects=False,
        )
        assert response.status_code == 400, uri
        assert "location" not in response.headers
    assert (await browser.get("/auth/whoami")).status_code == 200


async def test_logout_without_a_hint_asks_first_and_needs_the_csrf_token(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    """No hint: a confirmation page, nothing ended; a forged confirm (wrong CSRF
    token) ends nothing; the page's own form signs out and redirects with state."""
    client = await oidc_client(app)
    params = {
        "client_id": client.id,
        "post_logout_redirect_uri": "https://rp.example/bye",
        "state": "s1",
    }
    page = await browser.get("/oauth/logout", params=params)
    assert page.status_code == 200 and "Sign out of keyturn?" in page.text
    assert "form-action 'self' https://rp.example" in page.headers["content-security-policy"]
    assert (await browser.get("/auth/whoami")).status_code == 200
    forged = await browser.post(
        "/oauth/logout", data={**params, "confirm": "yes", "csrf_token": "wrong"}
    )
    assert forged.status_code == 403
    assert (await browser.get("/auth/whoami")).status_code == 200
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    confirmed = await browser.post(
        "/oauth/logout",
        data={**params, "confirm": "yes", "csrf_token": csrf},
        headers={"Origin": "https://evil.example"},  # the gate is the token, not the origin
        follow_redirects=False,
    )
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == "https://rp.example/bye?state=s1"
    assert (await browser.get("/auth/whoami")).status_code == 401


async def test_logout_with_a_forged_hint_is_treated_as_no_hint(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    """A hint with a broken signature (or an access token as hint) ends nothing: the
    confirmation page is shown."""
    client = await oidc_client(app)
    tokens = await sign_in_app(browser, client)
    head, body, signature = tokens["id_token"].split(".")
    forged = f"{head}.{body}.{signature[::-1]}"
    for hint in (forged, tokens["access_token"]):
        page = await browser.get("/oauth/logout", params={"id_token_hint": hint})
        assert page.status_code == 200 and "Sign out of keyturn?" in page.text
    assert (await browser.get("/auth/whoami")).status_code == 200
