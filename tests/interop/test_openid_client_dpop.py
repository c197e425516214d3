"""Interop (issue #16 item 5): panva's ``openid-client`` v6 runs the authorization
code flow with PKCE and DPoP against a live ``keyturn serve``: discovery, a
DPoP-bound code exchange, a protected call with ``Authorization: DPoP``, a refresh
with a proof of the same key, and (with ``--dpop-nonce``) the ``use_dpop_nonce``
retry it does by itself. The browser's part is played by httpx
(:func:`tests.server.test_interop_code_flow.sign_in_and_authorize`).

Needs node and ``npm ci`` in tests/interop/node (``make interop-deps``): skipped
locally without them, failed under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.live import LiveServer, LiveServers
from tests.server.test_interop_code_flow import EMAIL, PASSWORD, sign_in_and_authorize
from tests.services import unavailable

NODE_DIR = Path(__file__).with_name("node")
SCRIPT = NODE_DIR / "dpop_code_flow.mjs"
REDIRECT = "http://127.0.0.1/callback"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed")
    if not (NODE_DIR / "node_modules" / "openid-client").is_dir():
        unavailable(
            "openid-client is not installed: make interop-deps (npm ci in tests/interop/node)"
        )
    return node


@pytest.fixture(params=[False, True], ids=["plain", "nonce"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    """A live server with one account, with or without --dpop-nonce."""
    servers = LiveServers(tmp_path)
    try:
        started = servers(*(["--dpop-nonce"] if request.param else []))
        started.add_user(EMAIL, PASSWORD)
        yield started
    finally:
        servers.stop_all()


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint of a public EC JWK, computed independently of keyturn."""
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


async def test_openid_client_runs_the_code_flow_with_dpop(server: LiveServer) -> None:
    """openid-client gets token_type DPoP bound to its key (cnf.jkt = its key's RFC 7638
    thumbprint), calls whoami and userinfo with DPoP, refreshes with the same key, and handles
    use_dpop_nonce by itself when the server demands nonces."""
    node = _node()
    added = server.cli(
        "client", "add", "openid-client", "--redirect-uri", REDIRECT, "--first-party", "--json"
    )
    assert added.returncode == 0, added.stderr
    client_id = json.loads(added.stdout)["client_id"]
    job = {
        "issuer": server.url,
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid email",
    }
    process = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        json.dumps(job),
        cwd=NODE_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stdin is not None
    try:
        first = await asyncio.wait_for(process.stdout.readline(), 30)
        assert first, (await process.stderr.read()).decode() if process.stderr else ""
        redirect = await sign_in_and_authorize(server, json.loads(first)["authorization_url"])
        process.stdin.write(redirect.encode() + b"\n")
        await process.stdin.drain()
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, err.decode()
    result = json.loads(out.decode().strip().splitlines()[-1])
    jkt = _thumbprint(result["public_jwk"])
    assert result["token_type"].lower() == "dpop"
    assert _claims(result["access_token"])["cnf"] == {"jkt": jkt}
    assert result["whoami"]["status"] == 200, result["whoami"]
    assert result["whoami"]["body"]["email"] == EMAIL
    assert result["userinfo"]["email"] == EMAIL  # userinfo with the bound token and a proof
    assert result["refreshed_token_type"].lower() == "dpop"
    assert _claims(result["refreshed_access_token"])["cnf"] == {"jkt": jkt}
    assert result["whoami_after_refresh"]["status"] == 200
