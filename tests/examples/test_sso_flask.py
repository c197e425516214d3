"""The OIDC guide's Flask app (``examples/sso/flask_app.py``, Authlib) signs a user
in through a live ``keyturn serve`` (issue #13, item 8): Flask's own server, real
HTTP on both sides, the code flow with PKCE and a nonce, and Authlib's ID token
checks."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest
from tests.examples.sso_support import (
    EMAIL,
    PASSWORD,
    AppServer,
    confidential_client,
    sign_in_through_keyturn,
    user_id,
)
from tests.live import LiveServer, server_with_account


@pytest.fixture(scope="module")
def keyturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One live keyturn with one account."""
    with server_with_account(
        tmp_path_factory.mktemp("sso-flask-keyturn"), EMAIL, PASSWORD
    ) as started:
        yield started


@pytest.fixture(scope="module")
def app(keyturn: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """``flask --app examples.sso.flask_app run`` registered as a client of ``keyturn``."""
    client = confidential_client(keyturn, "http://127.0.0.1/auth/callback")
    env = {
        "OIDC_ISSUER": keyturn.url,
        "OIDC_CLIENT_ID": client["client_id"],
        "OIDC_CLIENT_SECRET": client["client_secret"],
        "FLASK_SECRET_KEY": secrets.token_hex(32),
    }
    args = ["flask", "--app", "examples.sso.flask_app", "run", "--host", "127.0.0.1"]
    server = AppServer(
        [*args, "--port", "{port}"], workdir=tmp_path_factory.mktemp("sso-flask-app"), env=env
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


async def test_the_flask_app_signs_the_user_in_through_keyturn(
    keyturn: LiveServer, app: AppServer
) -> None:
    """/ sends a signed-out visitor to /login, which sends the browser to keyturn's
    /oauth/authorize (S256, nonce); after signing in there, the callback exchanges
    the code, Authlib checks the ID token, and / shows the account."""
    async with httpx.AsyncClient(base_url=app.url) as browser:
        home = await browser.get("/")
        assert home.status_code == 302 and home.headers["location"] == "/login"
        login = await browser.get("/login")
        await sign_in_through_keyturn(browser, login, keyturn, "/auth/callback")

        signed_in = await browser.get("/")
    assert signed_in.status_code == 200
    assert signed_in.text == f"Signed in as {EMAIL} (sub {user_id(keyturn)})"
