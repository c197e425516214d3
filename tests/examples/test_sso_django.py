"""The OIDC guide's Django project (``examples/sso/django_app``, mozilla-django-oidc)
signs a user in through a live ``keyturn serve`` (issue #13, item 8): ``migrate``,
then Django's own ``runserver``, real HTTP on both sides; ``login_required`` sends
the visitor to keyturn, and the callback checks the RS256 ID token against the
JWKS and the nonce, reads userinfo, and makes the Django user."""

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
)
from tests.live import LiveServer, server_with_account


@pytest.fixture(scope="module")
def keyturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One live keyturn with one account."""
    with server_with_account(
        tmp_path_factory.mktemp("sso-django-keyturn"), EMAIL, PASSWORD
    ) as started:
        yield started


@pytest.fixture(scope="module")
def app(keyturn: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """The project under ``runserver``, registered as a client of ``keyturn``, on a
    fresh SQLite database."""
    client = confidential_client(keyturn, "http://127.0.0.1/oidc/callback/")
    env = {
        "DJANGO_SETTINGS_MODULE": "examples.sso.django_app.settings",
        "DJANGO_SECRET_KEY": secrets.token_hex(32),
        "OIDC_ISSUER": keyturn.url,
        "OIDC_CLIENT_ID": client["client_id"],
        "OIDC_CLIENT_SECRET": client["client_secret"],
    }
    args = ["django", "runserver", "--noreload", "127.0.0.1:{port}"]
    server = AppServer(args, workdir=tmp_path_factory.mktemp("sso-django-app"), env=env)
    server.run("django", "migrate", "--verbosity", "0")
    try:
        server.start()
        yield server
    finally:
        server.stop()


async def test_the_django_app_signs_the_user_in_through_keyturn(
    keyturn: LiveServer, app: AppServer
) -> None:
    """login_required sends a signed-out visitor to /oidc/authenticate/, which sends
    the browser to keyturn's /oauth/authorize (S256, nonce); after signing in there,
    /oidc/callback/ makes the user and returns to the protected page."""
    async with httpx.AsyncClient(base_url=app.url) as browser:
        home = await browser.get("/")
        assert home.status_code == 302
        assert home.headers["location"] == "/oidc/authenticate/?next=/"
        start = await browser.get(home.headers["location"])
        await sign_in_through_keyturn(browser, start, keyturn, "/oidc/callback/")

        signed_in = await browser.get("/")
    assert signed_in.status_code == 200
    assert signed_in.text == f"Signed in as {EMAIL}"
