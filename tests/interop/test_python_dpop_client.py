"""Interop (issue #16 item 5): a Python DPoP client written with joserfc the way
RFC 9449 sections 4.1 and 4.2 describe one (ES256 key, ``typ: dpop+jwt``, the public
``jwk`` in the header, ``jti``/``htm``/``htu``/``iat``, and ``ath`` at resources),
against a live ``keyturn serve``: the code flow with PKCE and a proof, the bound
token at ``/auth/whoami``, a refresh with the same key, and the refusals a thief meets."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import ECKey
from tests.live import LiveServer, server_with_account
from tests.server.code_flow_support import pkce
from tests.server.test_interop_code_flow import EMAIL, PASSWORD, sign_in_and_authorize

REDIRECT = "http://127.0.0.1/callback"


class RfcClient:
    """A DPoP client as RFC 9449 writes one: nothing of keyturn's code."""

    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256")

    @property
    def jkt(self) -> str:
        """RFC 7638 thumbprint of the public key (required members, sorted, no spaces)."""
        public = self.key.as_dict(private=False)
        members = json.dumps(
            {k: public[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
        )
        return (
            base64.urlsafe_b64encode(hashlib.sha256(members.encode()).digest())
            .rstrip(b"=")
            .decode()
        )

    def proof(self, htm: str, htu: str, access_token: str | None = None) -> str:
        """A proof as in RFC 9449 section 4.2, figure 3 (``ath`` per section 4.2)."""
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.key.as_dict(private=False)}
        claims: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "htm": htm,
            "htu": htu,
            "iat": int(time.time()),
        }
        if access_token is not None:
            digest = hashlib.sha256(access_token.encode("ascii")).digest()
            claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        return jws.serialize_compact(header, json.dumps(claims).encode(), self.key)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One live server (default settings) with one account."""
    with server_with_account(tmp_path_factory.mktemp("interop-dpop"), EMAIL, PASSWORD) as started:
        yield started


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


async def test_rfc_client_against_a_live_server(server: LiveServer) -> None:
    """The RFC-style client gets a DPoP token bound to its key, uses it with proofs,
    refreshes with the same key; the token as Bearer, a replayed proof, and a
    refresh by another key are refused."""
    added = server.cli(
        "client", "add", "rfc-client", "--redirect-uri", REDIRECT, "--first-party", "--json"
    )
    assert added.returncode == 0, added.stderr
    client_id = json.loads(added.stdout)["client_id"]
    pair = pkce()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "email",
        "state": "s1",
        "code_challenge": pair.challenge,
        "code_challenge_method": "S256",
    }
    redirect = await sign_in_and_authorize(server, "/oauth/authorize?" + urlencode(query))
    code = parse_qs(urlsplit(redirect).query)["code"][0]
    client, thief = RfcClient(), RfcClient()
    token_url, whoami_url = f"{server.url}/oauth/token", f"{server.url}/auth/whoami"
    async with httpx.AsyncClient(base_url=server.url) as http:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": pair.verifier,
            "client_id": client_id,
        }
        issued = await http.post(
            "/oauth/token", data=form, headers={"DPoP": client.proof("POST", token_url)}
        )
        assert issued.status_code == 200, issued.text
        body = issued.json()
        assert body["token_type"] == "DPoP"
        token = body["access_token"]
        assert _claims(token)["cnf"] == {"jkt": client.jkt}

        headers = {"Authorization": f"DPoP {token}", "DPoP": client.proof("GET", whoami_url, token)}
        whoami = await http.get("/auth/whoami", headers=headers)
        assert whoami.status_code == 200 and whoami.json()["email"] == EMAIL
        replayed = await http.get("/auth/whoami", headers=headers)
        assert replayed.status_code == 401
        assert 'error="invalid_dpop_proof"' in replayed.headers["www-authenticate"]
        as_bearer = await http.get("/auth/whoami", headers={"Authorization": f"Bearer {token}"})
        assert as_bearer.status_code == 401

        refresh = {
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": client_id,
        }
        stolen = await http.post(
            "/oauth/token", data=refresh, headers={"DPoP": thief.proof("POST", token_url)}
        )
        assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_dpop_proof"
        renewed = await http.post(
            "/oauth/token", data=refresh, headers={"DPoP": client.proof("POST", token_url)}
        )
        assert renewed.status_code == 200, renewed.text
        assert _claims(renewed.json()["access_token"])["cnf"] == {"jkt": client.jkt}
