"""node's ``openid-client`` v6 (panva's certified relying-party library, from npm,
installed by ``make interop-deps``) against a live ``keyturn serve`` (issue #13,
item 7): discovery, code + PKCE + nonce, ID token validation, userinfo, refresh,
and RP-initiated logout. Under ``CI=true`` a missing node or package fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.live import LiveServer, server_with_account

NODE_PROJECT = Path(__file__).parents[1] / "interop" / "node"
EMAIL = "node-rp@example.com"
PASSWORD = "correct horse battery staple"
REDIRECT = "http://127.0.0.1/callback"
POST_LOGOUT = "http://127.0.0.1/signed-out"


def node_or_fail() -> str:
    """The node binary, with openid-client installed next to the script."""
    node = shutil.which("node")
    installed = (NODE_PROJECT / "node_modules" / "openid-client" / "package.json").is_file()
    if node is not None and installed:
        return node
    why = "node is not installed" if node is None else "run `make interop-deps` (npm ci)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"openid-client interop cannot run: {why}")
    pytest.skip(f"openid-client interop: {why}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One live server with one account."""
    with server_with_account(
        tmp_path_factory.mktemp("interop-oidc-node"), EMAIL, PASSWORD
    ) as started:
        yield started


def test_openid_client_signs_in_validates_and_logs_out(server: LiveServer) -> None:
    """openid-client discovers keyturn, validates the RS256 ID token (nonce,
    at_hash, iss, aud), reads userinfo, refreshes, and RP-initiated logout with
    its id_token_hint ends the keyturn session and returns with state."""
    node = node_or_fail()
    done = server.cli(
        "client", "add", "node-rp", "--confidential", "--first-party",
        "--redirect-uri", REDIRECT, "--post-logout-redirect-uri", POST_LOGOUT, "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    request = {
        "issuer": server.url,
        "client_id": created["client_id"],
        "client_secret": created["client_secret"],
        "redirect_uri": REDIRECT,
        "post_logout_redirect_uri": POST_LOGOUT,
        "email": EMAIL,
        "password": PASSWORD,
    }
    run = subprocess.run(
        [node, str(NODE_PROJECT / "openid_client_flow.mjs")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen["issuer"] == server.url
    assert seen["id_token_alg"] == "RS256"
    assert seen["claims"]["aud"] == created["client_id"]
    assert seen["claims"]["email"] == EMAIL and seen["userinfo"]["email"] == EMAIL
    assert seen["userinfo"]["sub"] == seen["claims"]["sub"]
    assert seen["refreshed"] is True
    assert seen["logout_status"] == 303
    assert seen["logout_location"] == POST_LOGOUT + "?state=bye"
    assert seen["whoami_after_logout"] == 401
