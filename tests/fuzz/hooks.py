"""Schemathesis hooks for the fuzz run: real credentials for a live ``keyturn serve``.

Loaded by the ``schemathesis`` CLI (``SCHEMATHESIS_HOOKS``), configured by
environment variables that tests/fuzz/test_schemathesis.py sets:

- ``FUZZ_BASE_URL``: the server, e.g. ``http://127.0.0.1:PORT``;
- ``FUZZ_LOG``: a file that gets one ``METHOD PATH STATUS AUTH`` line per call;
- ``FUZZ_CLIENT_ID``, ``FUZZ_CLIENT_SECRET``: a confidential client (with the
  ``client_credentials`` grant, which ``POST /oauth/token`` cases get), whose HTTP
  Basic credentials ``POST /oauth/introspect`` gets.

:class:`Accounts` keeps one signed-in account: a session cookie with its CSRF token
and a bearer access token bound to that session (``POST /auth/token``; the
password grant is off by default). Every authenticated case gets
one of the two (chosen per case), checked with ``GET /auth/whoami`` first: the
fuzzer signs out, ends every sign-in and rotates sessions, so a dead credential is
replaced by a fresh sign-in. Each account talks from its own loopback address
(127.0.1.N): the fuzzer's many failed sign-ins from 127.0.0.1 throttle that
address, not the account's. When the fuzzer has locked the account (wrong
passwords at ``/auth/reauthenticate``), the next sign-in registers a new one.

Half of the positive cases of the password-taking operations get the account's
real password, half of those of revocation and introspection its access
token, and half of the ``client_credentials`` token requests the client's
credentials, so the fuzzer reaches their success paths too.
"""

from __future__ import annotations

import base64
import os
import random
import secrets
import threading
from dataclasses import dataclass
from typing import Any

import httpx
import schemathesis
from schemathesis import Case
from schemathesis.generation import GenerationMode

SESSION_COOKIE = "__Host-keyturn_session"
CSRF_HEADER = "X-CSRF-Token"

#: Operations that need a caller (cookie or bearer).
AUTHENTICATED = frozenset(
    {
        ("GET", "/auth/whoami"),
        ("POST", "/auth/logout"),
        ("POST", "/auth/logout-all"),
        ("GET", "/auth/sessions"),
        ("DELETE", "/auth/sessions/{session_id}"),
        ("POST", "/auth/password"),
        ("POST", "/auth/reauthenticate"),
        ("POST", "/auth/token"),
    }
)

#: Operations that only a cookie caller passes (a bearer caller gets 400 or 403).
COOKIE_ONLY = frozenset({("POST", "/auth/reauthenticate"), ("POST", "/auth/token")})

_BASE_URL = os.environ.get("FUZZ_BASE_URL", "http://127.0.0.1:8000")
_LOG = os.environ.get("FUZZ_LOG")
_CLIENT = (os.environ.get("FUZZ_CLIENT_ID", ""), os.environ.get("FUZZ_CLIENT_SECRET", ""))
_lock = threading.Lock()
_choice = random.Random(17)  # which credential a case carries: no secret


@dataclass
class Credentials:
    """One signed-in account: both credentials, and where it talks from."""

    email: str
    password: str
    address: str
    cookie: str
    csrf_token: str
    access_token: str


class Accounts:
    """Signs in (registering when needed) and keeps the credentials alive."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.serial = 0
        self.email = ""
        self.password = ""
        self.current: Credentials | None = None
        self.sign_ins = 0

    def _client(self, address: str) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=address)
        return httpx.Client(base_url=self.base_url, transport=transport, timeout=30.0)

    def _address(self) -> str:
        return f"127.0.1.{1 + self.serial % 250}"

    def _register(self) -> None:
        self.serial += 1
        self.email = f"fuzz-{self.serial}-{secrets.token_hex(4)}@example.com"
        self.password = "fuzz-" + secrets.token_urlsafe(18)
        with self._client(self._address()) as client:
            response = client.post(
                "/auth/register", json={"email": self.email, "password": self.password}
            )
        if response.status_code != 201:
            raise RuntimeError(f"registering the fuzz account failed: {response.text}")

    def _alive(self, credentials: Credentials) -> bool:
        with self._client(credentials.address) as client:
            by_cookie = client.get(
                "/auth/whoami", headers={"Cookie": f"{SESSION_COOKIE}={credentials.cookie}"}
            )
            by_token = client.get(
                "/auth/whoami", headers={"Authorization": f"Bearer {credentials.access_token}"}
            )
        return by_cookie.status_code == 200 and by_token.status_code == 200

    def _sign_in(self) -> Credentials | None:
        address = self._address()
        with self._client(address) as client:
            login = client.post(
                "/auth/login", json={"email": self.email, "password": self.password}
            )
            if login.status_code != 200:
                return None
            # The session's own token: the password grant is off by default (#12).
            grant = client.post(
                "/auth/token",
                headers={
                    "Cookie": f"{SESSION_COOKIE}={login.cookies[SESSION_COOKIE]}",
                    "X-CSRF-Token": login.json()["csrf_token"],
                },
            )
        if grant.status_code != 200:
            return None
        self.sign_ins += 1
        return Credentials(
            email=self.email,
            password=self.password,
            address=address,
            cookie=login.cookies[SESSION_COOKIE],
            csrf_token=login.json()["csrf_token"],
            access_token=grant.json()["access_token"],
        )

    def get(self) -> Credentials:
        """Live credentials: the cached ones, or a fresh sign-in (a new account
        when the current one is locked or its password was changed)."""
        with _lock:
            if self.current is not None and self._alive(self.current):
                return self.current
            if not self.email:
                self._register()
            credentials = self._sign_in()
            if credentials is None:
                self._register()
                credentials = self._sign_in()
            if credentials is None:
                raise RuntimeError("the fuzz account could not sign in")
            self.current = credentials
            return credentials

    def password_changed(self, email: str, new_password: str) -> None:
        """The fuzzer changed the account's password with the real current one."""
        with _lock:
            if email == self.email:
                self.password = new_password


ACCOUNTS = Accounts(_BASE_URL)


@schemathesis.auth(refresh_interval=None, retry_on=[]).apply_to(
    name=[f"{method} {path}" for method, path in sorted(AUTHENTICATED)]
)
class KeyturnAuth:
    """A session cookie plus ``X-CSRF-Token``, or a bearer token, per case."""

    def get(self, case: Case, context: Any) -> Credentials:
        return ACCOUNTS.get()

    def set(self, case: Case, data: Credentials, context: Any) -> None:
        case.headers = dict(case.headers or {})
        label = (case.operation.method.upper(), case.operation.path)
        with _lock:  # mostly cookies where only a cookie succeeds; bearers are refused there
            by_cookie = _choice.random() < (0.8 if label in COOKIE_ONLY else 0.5)
        if by_cookie:
            cookies = dict(case.cookies or {})
            cookies[SESSION_COOKIE] = data.cookie
            case.cookies = cookies
            case.headers.setdefault(CSRF_HEADER, data.csrf_token)
        else:
            case.headers.setdefault("Authorization", f"Bearer {data.access_token}")


@schemathesis.auth(refresh_interval=None, retry_on=[]).apply_to(name="POST /oauth/introspect")
class ClientAuth:
    """The confidential client's HTTP Basic credentials, for introspection."""

    def get(self, case: Case, context: Any) -> str:
        client_id, secret = _CLIENT
        return base64.b64encode(f"{client_id}:{secret}".encode()).decode("ascii")

    def set(self, case: Case, data: str, context: Any) -> None:
        case.headers = dict(case.headers or {})
        case.headers.setdefault("Authorization", f"Basic {data}")


def _positive(case: Case) -> bool:
    meta = case.meta
    return meta is None or meta.generation.mode == GenerationMode.POSITIVE


@schemathesis.hook
def map_case(context: Any, case: Case) -> Case:
    """Give half of the positive password-taking cases the account's real password."""
    if not _positive(case) or not isinstance(case.body, dict):
        return case
    with _lock:
        use_real = _choice.random() < 0.5
    if not use_real:
        return case
    credentials = ACCOUNTS.current
    if credentials is None:
        return case
    label = (case.operation.method.upper(), case.operation.path)
    body = dict(case.body)
    if label == ("POST", "/auth/login"):
        body.update(email=credentials.email, password=credentials.password)
    elif label == ("POST", "/oauth/token") and body.get("grant_type") == "password":
        body.update(username=credentials.email, password=credentials.password)
    elif label == ("POST", "/oauth/token") and body.get("grant_type") == "client_credentials":
        # The password grant is off by default (#12): this is the grant that succeeds.
        client_id, secret = _CLIENT
        body.update(client_id=client_id, client_secret=secret)
        for name in ("scope", "refresh_cookie", "username", "password", "refresh_token"):
            body.pop(name, None)
    elif label == ("POST", "/auth/reauthenticate"):
        body["password"] = credentials.password
    elif label in (("POST", "/oauth/introspect"), ("POST", "/oauth/revoke")):
        body["token"] = credentials.access_token
    elif label == ("POST", "/auth/password"):
        body["current_password"] = credentials.password
        body["new_password"] = "fuzz-" + secrets.token_urlsafe(18)
    else:
        return case
    case.body = body
    return case


@schemathesis.hook
def after_call(context: Any, case: Case, response: Any) -> None:
    """Log every call; follow a password change the fuzzer made with the real password."""
    method, path = case.operation.method.upper(), case.operation.path
    if (method, path) == ("POST", "/auth/password") and response.status_code == 204:
        body = case.body if isinstance(case.body, dict) else {}
        credentials = ACCOUNTS.current
        if credentials is not None and body.get("current_password") == credentials.password:
            ACCOUNTS.password_changed(credentials.email, str(body["new_password"]))
    if _LOG:
        headers = case.headers or {}
        cookies = case.cookies or {}
        authorization = str(headers.get("Authorization", ""))
        auth = (
            "bearer"
            if authorization.startswith("Bearer ")
            else "basic"
            if authorization.startswith("Basic ")
            else "cookie"
            if SESSION_COOKIE in cookies
            else "-"
        )
        with _lock, open(_LOG, "a", encoding="utf-8") as log:
            log.write(f"{method} {path} {response.status_code} {auth}\n")
