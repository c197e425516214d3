"""The OIDC guide's Flask app (``examples/sso/flask_app.py``, Authlib) signs a user
in through a live ``keyturn serve`` (issue #13, item 8): Flask's own server, real
HTTP on both sides, the code flow with PKCE and a nonce, and Authlib's ID token
checks."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest
from tests.examples.sso_support import EMAIL, PASSWORD, AppServer, confidential_client, user_id
from tests.live import LiveServer, LiveServers
from tests.server.test_interop_code_flow import sign_in_and_authorize


@pytest.fixture(scope="module")
def keyturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One live keyturn with one account."""
    servers = LiveServers(tmp_path_factory.mktemp("sso-flask-keyturn"))
    try:
        started = servers()
        started.add_user(EMAIL, PASSWORD)
        yield started
    finally:
        servers.stop_all()


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
        assert login.status_code == 302
        authorize = httpx.URL(login.headers["location"])
        assert str(authorize).startswith(keyturn.url + "/oauth/authorize?")
        assert authorize.params["redirect_uri"] == app.url + "/auth/callback"
        assert authorize.params["scope"] == "openid email"
        assert authorize.params["code_challenge_method"] == "S256"
        assert authorize.params["nonce"] and authorize.params["state"]

        back = httpx.URL(await sign_in_and_authorize(keyturn, str(authorize)))
        assert str(back).startswith(app.url + "/auth/callback?code=")
        assert back.params["state"] == authorize.params["state"]
        callback = await browser.get(str(back))
        assert callback.status_code == 302, callback.text
        assert callback.headers["location"] == "/"

        signed_in = await browser.get("/")
    assert signed_in.status_code == 200
    assert signed_in.text == f"Signed in as {EMAIL} (sub {user_id(keyturn)})"
