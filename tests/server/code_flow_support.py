"""Helpers for the authorization code flow tests (``/oauth/authorize``, the code
grant, PAR): registering clients, PKCE pairs, and walking the flow with httpx.

The apps are those of :mod:`tests.server.token_support` (``https://testserver``,
a migrated database, a frozen clock).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from tests.server.token_support import BASE, EMAIL, PASSWORD, MakeClient, keyturn_of, login

from keyturn.runtime import Keyturn

SPA_REDIRECT = "https://app.example/callback"
NATIVE_REDIRECT = "http://127.0.0.1/callback"


@pytest.fixture
def lite_app(build_app: Callable[..., FastAPI], sqlite_url: str) -> FastAPI:
    """An app on a migrated SQLite file, frozen clock (import it with ``build_app``
    and ``clock`` from :mod:`tests.server.token_support`)."""
    return build_app(sqlite_url)


@pytest.fixture(name="browser")
async def signed_in_browser(
    make_client: MakeClient, lite_app: FastAPI
) -> AsyncIterator[httpx.AsyncClient]:
    """``browser``: a signed-in browser on ``lite_app`` (one registered account)."""
    async with make_client(app=lite_app, base_url=BASE) as opened:
        response = await opened.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
        assert response.status_code == 201
        await login(opened)
        yield opened


@dataclass(frozen=True)
class RegisteredClient:
    """A client made for a test; ``secret`` is None for a public client."""

    id: str
    secret: str | None
    redirect_uri: str


async def register_client(
    app: FastAPI,
    *,
    name: str = "Test app",
    confidential: bool = False,
    first_party: bool = True,
    redirect_uris: tuple[str, ...] = (SPA_REDIRECT,),
    grants: tuple[str, ...] = ("authorization_code", "refresh_token"),
    scopes: tuple[str, ...] = (),
) -> RegisteredClient:
    """Register a client on ``app`` through the client model."""
    keyturn: Keyturn = keyturn_of(app)
    created = await keyturn.clients.add(
        name,
        confidential=confidential,
        scopes=scopes,
        redirect_uris=redirect_uris,
        first_party=first_party,
        grant_types=grants,
    )
    record = created.client
    return RegisteredClient(record.id, created.secret, redirect_uris[0])


@dataclass(frozen=True)
class Pkce:
    """A PKCE verifier and its S256 challenge."""

    verifier: str
    challenge: str


def pkce() -> Pkce:
    """A fresh PKCE pair (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return Pkce(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


def authorize_params(client: RegisteredClient, proof: Pkce, **extra: str | None) -> dict[str, str]:
    """The query of an authorization request; ``None`` values are left out."""
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": client.id,
        "redirect_uri": client.redirect_uri,
        "scope": "openid email",
        "state": "st-" + secrets.token_hex(4),
        "code_challenge": proof.challenge,
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return {name: value for name, value in params.items() if value is not None}


def query_of(location: str) -> dict[str, str]:
    """The query of a redirect ``Location``, one value per name."""
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


async def authorize(client: httpx.AsyncClient, params: dict[str, str]) -> httpx.Response:
    """``GET /oauth/authorize`` without following the redirect."""
    return await client.get("/oauth/authorize", params=params, follow_redirects=False)


async def get_code(client: httpx.AsyncClient, params: dict[str, str]) -> str:
    """The code of a successful authorization on the signed-in ``client``."""
    response = await authorize(client, params)
    assert response.status_code == 303, response.text
    query = query_of(response.headers["location"])
    assert "code" in query, response.headers["location"]
    return query["code"]


async def exchange(
    client: httpx.AsyncClient,
    registered: RegisteredClient,
    code: str,
    verifier: str,
    *,
    redirect_uri: str | None = None,
    basic_auth: bool = True,
    **extra: Any,
) -> httpx.Response:
    """``POST /oauth/token`` with ``grant_type=authorization_code``; a
    confidential client authenticates with HTTP Basic (or in the body)."""
    data: dict[str, Any] = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri or registered.redirect_uri,
        "code_verifier": verifier,
    }
    auth = None
    if registered.secret is None:
        data["client_id"] = registered.id
    elif basic_auth:
        auth = (registered.id, registered.secret)
    else:
        data["client_id"], data["client_secret"] = registered.id, registered.secret
    data.update(extra)
    return await client.post("/oauth/token", data=data, auth=auth)
