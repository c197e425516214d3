"""Users and credentials made through keyturn's real HTTP API.

Every credential the benchmark uses is obtained the way a client obtains it:
``POST /auth/register``, then ``POST /auth/login`` (the session cookie and its
CSRF token) or the password grant of ``POST /oauth/token`` (a bearer token).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import httpx

from keyturn.bench.errors import BenchError
from keyturn.bench.servers import ServerProcess

__all__ = [
    "PASSWORD",
    "SESSION_COOKIE",
    "Credential",
    "check_whoami",
    "login",
    "password_grant",
    "register",
    "session_token",
]

#: The password of every benchmark user (a throw-away server, a fresh database).
PASSWORD = "correct horse battery staple"  # noqa: S105 - not a secret

SESSION_COOKIE = "__Host-keyturn_session"

Kind = Literal["session", "token"]


@dataclass(frozen=True)
class Credential:
    """A signed-in user as a client holds it: request headers, and for a session
    the CSRF token its unsafe requests need."""

    email: str
    kind: Kind
    headers: dict[str, str] = field(repr=False)
    csrf_token: str | None = field(default=None, repr=False)

    @property
    def unsafe_headers(self) -> dict[str, str]:
        """Headers for a POST as this user (the CSRF header for a cookie)."""
        headers = dict(self.headers)
        if self.csrf_token is not None:
            headers["X-CSRF-Token"] = self.csrf_token
        return headers

    @property
    def cookie(self) -> str:
        """``NAME=VALUE`` of the session cookie (sessions only)."""
        return self.headers.get("Cookie", "")


def _fail(action: str, response: httpx.Response) -> BenchError:
    return BenchError(f"{action}: {response.status_code} {response.text[:200]}")


def register(server: ServerProcess, email: str, password: str = PASSWORD) -> None:
    """``POST /auth/register``.

    Raises:
        BenchError: the server refused.
    """
    with server.client() as client:
        response = client.post("/auth/register", json={"email": email, "password": password})
    if response.status_code != 201:
        raise _fail("POST /auth/register", response)


def login(server: ServerProcess, email: str, password: str = PASSWORD) -> Credential:
    """``POST /auth/login``: the session cookie it set and the CSRF token.

    Raises:
        BenchError: the sign-in failed or set no session cookie.
    """
    with server.client() as client:
        response = client.post("/auth/login", json={"email": email, "password": password})
    if response.status_code != 200:
        raise _fail("POST /auth/login", response)
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == SESSION_COOKIE:
            value = rest.split(";", 1)[0]
            return Credential(
                email,
                "session",
                {"Cookie": f"{SESSION_COOKIE}={value}"},
                str(response.json()["csrf_token"]),
            )
    raise BenchError("POST /auth/login set no session cookie")


def password_grant(server: ServerProcess, email: str, password: str = PASSWORD) -> Credential:
    """The password grant of ``POST /oauth/token``: a bearer access token.

    Raises:
        BenchError: the grant failed.
    """
    with server.client() as client:
        response = client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": email, "password": password},
        )
    if response.status_code != 200:
        raise _fail("POST /oauth/token", response)
    token = str(response.json()["access_token"])
    return Credential(email, "token", {"Authorization": f"Bearer {token}"})


def session_token(client: httpx.Client, session: Credential) -> str:
    """``POST /auth/token``: an access token minted for a browser session (no
    password hashing, so many tokens can be made quickly).

    Raises:
        BenchError: the server refused.
    """
    response = client.post("/auth/token", headers=session.unsafe_headers)
    if response.status_code != 200:
        raise _fail("POST /auth/token", response)
    return str(response.json()["access_token"])


def check_whoami(server: ServerProcess, credential: Credential) -> None:
    """``GET /auth/whoami`` answers 200 for ``credential``, through the expected path.

    Raises:
        BenchError: it did not.
    """
    with server.client() as client:
        response = client.get("/auth/whoami", headers=credential.headers)
    if response.status_code != 200 or response.json().get("via") != credential.kind:
        raise _fail(f"GET /auth/whoami with a {credential.kind}", response)
