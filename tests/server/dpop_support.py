"""Helpers of the DPoP black-box tests: a client key that signs proofs for the
in-process app at ``https://testserver`` (with the app's frozen clock), and the
code flow walked with a proof at the token endpoint."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from joserfc.jwk import ECKey
from tests.server.code_flow_support import (
    RegisteredClient,
    authorize_params,
    get_code,
    pkce,
)
from tests.server.http_support import BASE
from tests.unit.dpop.proofs import Client

from keyturn.clock import FrozenClock

TOKEN_URL = f"{BASE}/oauth/token"
WHOAMI_URL = f"{BASE}/auth/whoami"


def dpop_key(clock: FrozenClock) -> Client:
    """A fresh P-256 client key whose proofs carry ``iat`` from ``clock``."""
    return Client(ECKey.generate_key("P-256"), "ES256", clock)


def claims_of(token: str) -> dict[str, Any]:
    """The (unverified) payload of a JWT, to look at ``cnf``."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def dpop_auth(
    key: Client, token: str, htm: str = "GET", htu: str = WHOAMI_URL, **kw: Any
) -> dict[str, str]:
    """``Authorization: DPoP <token>`` and a fresh proof for ``htm htu``."""
    return {"Authorization": f"DPoP {token}", "DPoP": key.proof(htm, htu, access_token=token, **kw)}


async def dpop_code_tokens(
    browser: httpx.AsyncClient, client: RegisteredClient, key: Client | None, **proof: Any
) -> httpx.Response:
    """Walk the code flow on the signed-in ``browser`` and exchange the code with a
    proof of ``key`` (None: no proof)."""
    pair = pkce()
    code = await get_code(browser, authorize_params(client, pair))
    headers = {"DPoP": key.proof("POST", TOKEN_URL, **proof)} if key is not None else {}
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri,
        "code_verifier": pair.verifier,
    }
    auth = None
    if client.secret is None:
        data["client_id"] = client.id
    else:
        auth = (client.id, client.secret)
    return await browser.post("/oauth/token", data=data, headers=headers, auth=auth)


async def refresh_with(
    http: httpx.AsyncClient,
    refresh_token: str,
    key: Client | None,
    *,
    auth: tuple[str, str] | None = None,
    **data: str,
) -> httpx.Response:
    """``grant_type=refresh_token`` with a proof of ``key`` (None: no proof)."""
    headers = {"DPoP": key.proof("POST", TOKEN_URL)} if key is not None else {}
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **data}
    return await http.post("/oauth/token", data=form, headers=headers, auth=auth)
