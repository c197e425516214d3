"""The single sign-on examples (``examples/sso``) as real processes against a live
``keyturn serve``, for ``test_sso_flask.py`` and ``test_sso_django.py``.

:class:`AppServer` runs an example under its framework's own development server on
a free 127.0.0.1 port, with ``PYTHONPATH`` at the checkout, and reuses
:class:`tests.live.LiveServer` for the rest (a clean environment, output to files,
waiting until it answers, stopping the process group). The "browser" is httpx: it
keeps the app's cookies in its jar and signs in on keyturn's page with
:func:`tests.server.test_interop_code_flow.sign_in_and_authorize`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from tests.live import LiveServer
from tests.server.test_interop_code_flow import EMAIL, PASSWORD, sign_in_and_authorize

from keyturn.bench.servers import clean_environment

#: The checkout: ``examples`` is imported from here.
REPO = Path(__file__).resolve().parents[2]

__all__ = [
    "EMAIL",
    "PASSWORD",
    "AppServer",
    "confidential_client",
    "sign_in_through_keyturn",
    "user_id",
]


class AppServer(LiveServer):
    """``python -m MODULE ARGS`` (``{port}`` in ARGS is the chosen port)."""

    def __init__(self, args: Sequence[str], *, workdir: Path, env: Mapping[str, str]) -> None:
        super().__init__((), workdir=workdir, env={"PYTHONPATH": str(REPO), **env})
        self.module_args = list(args)

    def command(self) -> list[str]:
        return [sys.executable, "-m", *(arg.format(port=self.port) for arg in self.module_args)]

    def run(self, *args: str) -> None:
        """``python -m ARGS`` to completion in the app's directory and environment."""
        done = subprocess.run(
            [sys.executable, "-m", *args],
            env=clean_environment(self.env),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr


def confidential_client(keyturn: LiveServer, redirect_uri: str) -> dict[str, Any]:
    """A first-party confidential client of ``keyturn``: ``{"client_id", "client_secret"}``."""
    done = keyturn.cli(
        "client", "add", "SSO example", "--confidential", "--first-party",
        "--redirect-uri", redirect_uri, "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    created: dict[str, Any] = json.loads(done.stdout)
    return created


def user_id(keyturn: LiveServer) -> str:
    """The keyturn id of the account ``EMAIL`` (its ``sub``), from ``POST /auth/login``."""
    response = httpx.post(keyturn.url + "/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 200, response.text
    found: str = response.json()["user"]["id"]
    return found


async def sign_in_through_keyturn(
    browser: httpx.AsyncClient, start: httpx.Response, keyturn: LiveServer, callback: str
) -> None:
    """From the app's redirect ``start`` to keyturn's ``/oauth/authorize`` (``openid
    email``, S256, a nonce and a state, back to ``callback``), through keyturn's
    sign-in page, to the app's callback, which must send the browser home."""
    assert start.status_code == 302
    authorize = httpx.URL(start.headers["location"])
    assert str(authorize).startswith(keyturn.url + "/oauth/authorize?")
    assert authorize.params["redirect_uri"] == str(browser.base_url).rstrip("/") + callback
    assert authorize.params["scope"] == "openid email"
    assert authorize.params["code_challenge_method"] == "S256"
    assert authorize.params["nonce"] and authorize.params["state"]
    back = httpx.URL(await sign_in_and_authorize(keyturn, str(authorize)))
    assert str(back).startswith(str(browser.base_url).rstrip("/") + callback + "?code=")
    assert back.params["state"] == authorize.params["state"]
    answer = await browser.get(str(back))
    assert answer.status_code == 302, answer.text
    assert answer.headers["location"] == "/"
