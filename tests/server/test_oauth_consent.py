"""The consent page for third-party clients and "Connected apps" on /account,
black-box (SPEC "Clients", "OAuth 2.1 authorization code flow")."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from tests.server.code_flow_support import (
    RegisteredClient,
    authorize,
    authorize_params,
    exchange,
    lite_app,
    pkce,
    query_of,
    register_client,
    signed_in_browser,
)
from tests.server.test_pages import Form
from tests.server.token_support import (
    BASE,
    build_app,
    clock,
    refresh,
    whoami_status,
)

__all__ = ["build_app", "clock", "lite_app", "signed_in_browser"]


@pytest.fixture
async def third(lite_app: FastAPI, browser: httpx.AsyncClient) -> RegisteredClient:
    """A third-party public client."""
    return await register_client(lite_app, name="Photo Printer", first_party=False)


def form_fields(html: str) -> dict[str, str]:
    """The hidden fields of the consent form."""
    return {
        str(field["name"]): str(field.get("value") or "")
        for field in Form(html).inputs
        if field.get("name")
    }


async def consent_page(
    browser: httpx.AsyncClient, client: RegisteredClient, **extra: str
) -> tuple[httpx.Response, dict[str, str]]:
    params = authorize_params(client, pkce(), **extra)
    response = await authorize(browser, params)
    return response, params


async def test_consent_page_names_the_client_and_scopes_and_refuses_framing(
    browser: httpx.AsyncClient, third: RegisteredClient
) -> None:
    """A third-party client gets a page with its name and scopes, a CSRF token,
    frame-ancestors 'none' and X-Frame-Options DENY, and no-store."""
    response, _ = await consent_page(browser, third, scope="openid email")
    assert response.status_code == 200
    assert "Photo Printer" in response.text
    assert "email" in response.text
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    fields = form_fields(response.text)
    assert fields["csrf_token"]


async def test_allow_gives_a_code_and_is_remembered_per_scope_set(
    browser: httpx.AsyncClient, third: RegisteredClient
) -> None:
    """Allow: the code by redirect; the same scopes later: no page; a new scope: asked again."""
    response, params = await consent_page(browser, third, scope="openid")
    fields = form_fields(response.text)
    allowed = await browser.post(
        "/oauth/authorize", data={**fields, "decision": "allow"}, follow_redirects=False
    )
    assert allowed.status_code == 303
    query = query_of(allowed.headers["location"])
    assert query["state"] == params["state"]
    assert "code" in query
    again, _ = await consent_page(browser, third, scope="openid")
    assert again.status_code == 303
    assert "code" in query_of(again.headers["location"])
    wider, _ = await consent_page(browser, third, scope="openid email")
    assert wider.status_code == 200
    forced, _ = await consent_page(browser, third, scope="openid", prompt="consent")
    assert forced.status_code == 200


async def test_deny_redirects_access_denied(
    browser: httpx.AsyncClient, third: RegisteredClient
) -> None:
    """Deny: 303 to the client with error=access_denied, state and iss."""
    response, params = await consent_page(browser, third)
    denied = await browser.post(
        "/oauth/authorize",
        data={**form_fields(response.text), "decision": "deny"},
        follow_redirects=False,
    )
    query = query_of(denied.headers["location"])
    assert query["error"] == "access_denied"
    assert query["state"] == params["state"]
    assert query["iss"] == BASE


async def test_consent_post_without_the_csrf_token_is_refused(
    browser: httpx.AsyncClient, third: RegisteredClient
) -> None:
    """A consent answer without the session's CSRF token (a forged form) is 403."""
    response, _ = await consent_page(browser, third)
    fields = form_fields(response.text)
    fields.pop("csrf_token")
    forged = await browser.post(
        "/oauth/authorize", data={**fields, "decision": "allow"}, follow_redirects=False
    )
    assert forged.status_code == 403
    cross_site = await browser.post(
        "/oauth/authorize",
        data={**form_fields(response.text), "decision": "allow"},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        follow_redirects=False,
    )
    assert cross_site.status_code == 403


async def test_connected_apps_lists_the_grant_and_revoking_ends_its_tokens(
    browser: httpx.AsyncClient, third: RegisteredClient
) -> None:
    """/account lists the allowed app; "Remove access" ends its refresh family and
    access tokens, and the next request asks for consent again."""
    proof = pkce()
    params = authorize_params(third, proof)
    page = await authorize(browser, params)
    allowed = await browser.post(
        "/oauth/authorize",
        data={**form_fields(page.text), "decision": "allow"},
        follow_redirects=False,
    )
    code = query_of(allowed.headers["location"])["code"]
    body = (await exchange(browser, third, code, proof.verifier)).json()
    account = await browser.get("/account")
    assert "Connected apps" in account.text
    assert "Photo Printer" in account.text
    token = Form(account.text).value("csrf_token")
    revoked = await browser.post(
        f"/account/apps/{third.id}/revoke", data={"csrf_token": token}, follow_redirects=False
    )
    assert revoked.status_code == 303
    assert await whoami_status(browser, body["access_token"]) == 401
    stale = await refresh(browser, body["refresh_token"], client_id=third.id)
    assert stale.json()["error"] == "invalid_grant"
    assert "Photo Printer" not in (await browser.get("/account")).text
    asked_again, _ = await consent_page(browser, third)
    assert asked_again.status_code == 200


async def test_first_party_clients_skip_consent(
    lite_app: FastAPI, browser: httpx.AsyncClient
) -> None:
    """A first-party client never sees the consent page."""
    own = await register_client(lite_app, name="Our SPA", first_party=True)
    response, _ = await consent_page(browser, own)
    assert response.status_code == 303
    assert "code" in query_of(response.headers["location"])
