"""examples/reports signs its users in through the notes app (keyturn as the
OpenID Provider) with Authlib, and is signed out by keyturn's back-channel
logout: the code flow, the back-channel endpoint's checks (OIDC Back-Channel
Logout 1.0 section 2.6) and RP-initiated logout, all against real processes.
The browser side of the same flows is tests/browser/test_reports_sso.py."""

from __future__ import annotations

import ast
import asyncio
import base64
import functools
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import Key, RSAKey
from tests.examples.processes import PASSWORD, REPO, ExampleProcesses, NotesServer, ReportsServer
from tests.support import session_cookie

from keyturn import Keyturn, load_settings
from keyturn.bench.servers import sqlite_url

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
KEYTURN_COOKIE = "__Host-keyturn_session"
#: Seconds the outbox dispatcher may take to deliver a logout token.
DELIVERY_BOUND = 10.0

#: The modules of the OIDC sign-in side: a plain relying party, no keyturn inside.
SIGN_IN_MODULES = ("examples/reports/signin.py", "examples/reports/logout_token.py")


@pytest.fixture(scope="module")
def reports(examples: ExampleProcesses, notes: NotesServer) -> ReportsServer:
    """Reports registered at the notes app for its URL, with sign-in on."""
    return examples.signed_in_reports(notes)


class Browser:
    """An httpx client playing a browser that is signed in at keyturn (the
    ``__Host-`` cookie is set by hand: httpx keeps ``Secure`` cookies off http)."""

    def __init__(self, notes: NotesServer, email: str) -> None:
        with notes.client() as http:
            answer = http.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        self.keyturn_cookie = session_cookie(answer)
        self.csrf = answer.json()["csrf_token"]
        self.notes = notes
        self.http = httpx.Client(timeout=10.0)
        self.http.cookies.set(KEYTURN_COOKIE, self.keyturn_cookie, domain="127.0.0.1")

    def whoami(self) -> httpx.Response:
        """keyturn's view of the browser's session."""
        return httpx.get(
            f"{self.notes.url}/auth/whoami",
            headers={"Cookie": f"{KEYTURN_COOKIE}={self.keyturn_cookie}"},
        )

    def sign_out_at_keyturn(self) -> None:
        answer = httpx.post(
            f"{self.notes.url}/auth/logout",
            headers={
                "Cookie": f"{KEYTURN_COOKIE}={self.keyturn_cookie}",
                "X-CSRF-Token": self.csrf,
            },
        )
        assert answer.status_code == 204, answer.text


@pytest.fixture
def browser(notes: NotesServer, email: str) -> Iterator[Browser]:
    signed_in = Browser(notes, email)
    try:
        yield signed_in
    finally:
        signed_in.http.close()


def follow(http: httpx.Client, response: httpx.Response, hops: int = 5) -> httpx.Response:
    """Follow redirects by hand (each hop's Location is absolute or on the same
    origin), as a browser would."""
    for _ in range(hops):
        if response.status_code not in (302, 303):
            return response
        location = httpx.URL(str(response.url)).join(response.headers["location"])
        response = http.get(location)
    raise AssertionError(f"more than {hops} redirects")


def sign_in_at_reports(browser: Browser, reports: ReportsServer) -> httpx.Response:
    """Click "Sign in with keyturn": the page reports shows afterwards."""
    return follow(browser.http, browser.http.get(f"{reports.url}/login"))


def signed_in_as(browser: Browser, reports: ReportsServer) -> str | None:
    """Who reports' home page says is signed in (the e-mail), or None."""
    page = browser.http.get(f"{reports.url}/")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    if "Sign in with keyturn" in page.text:
        return None
    start = page.text.index('<strong class="user">') + len('<strong class="user">')
    return page.text[start : page.text.index("</strong>", start)]


def wait_signed_out(browser: Browser, reports: ReportsServer) -> float:
    """Seconds until reports shows the browser signed out (fails after the bound)."""
    started = time.monotonic()
    while time.monotonic() - started < DELIVERY_BOUND:
        if signed_in_as(browser, reports) is None:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"reports still shows the user signed in after {DELIVERY_BOUND} s")


# --- the issuer's signing key, for logout tokens the test makes ------------------------


@functools.cache
def issuer_key(notes: NotesServer) -> tuple[str, Key]:
    """The ``kid`` and private key of the notes app's RS256 ID-token key, read from
    its database with keyturn itself (only the test makes tokens with it)."""
    assert notes.database_path is not None

    async def load() -> tuple[str, Key]:
        kt = Keyturn(load_settings(database_url=sqlite_url(notes.database_path)))
        await kt.prepare(migrate=False)
        try:
            record, key, _ = kt.keys.ring.signer("RS256")
            return record.kid, key
        finally:
            await kt.close()

    return asyncio.run(load())


def logout_claims(notes: NotesServer, reports: ReportsServer, sub: str, sid: str) -> dict[str, Any]:
    """The claims of a valid logout token for the session ``sid`` of ``sub``."""
    now = int(time.time())
    return {
        "iss": notes.url,
        "aud": reports.client_id,
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
        "sub": sub,
        "sid": sid,
        "events": {LOGOUT_EVENT: {}},
    }


def signed(claims: dict[str, Any], key: Key, kid: str, typ: str = "logout+jwt") -> str:
    header = {"alg": "RS256", "kid": kid, "typ": typ}
    return jws.serialize_compact(header, json.dumps(claims).encode(), key)


def unsigned(claims: dict[str, Any], kid: str) -> str:
    """An ``alg: none`` JWT (RFC 7519 section 6): header and claims, no signature."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'kid': kid, 'typ': 'logout+jwt'})}.{part(claims)}."


def post_logout_token(reports: ReportsServer, token: str) -> httpx.Response:
    with reports.client() as http:
        return http.post("/auth/backchannel-logout", data={"logout_token": token})


# --- sign-in ---------------------------------------------------------------------------


def test_sign_in_runs_the_code_flow_with_pkce_and_a_nonce(
    browser: Browser, reports: ReportsServer, notes: NotesServer, email: str
) -> None:
    """``/login`` sends the browser to the issuer's authorization endpoint (from its
    discovery document) for ``openid email`` with PKCE S256, a nonce and a state;
    keyturn (first-party client, user signed in) answers with a code, and reports
    shows the user's e-mail from the validated ID token."""
    start = browser.http.get(f"{reports.url}/login")
    assert start.status_code == 302
    location = urlsplit(start.headers["location"])
    query = {name: values[0] for name, values in parse_qs(location.query).items()}
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"{notes.url}/oauth/authorize"
    )
    assert query["client_id"] == reports.client_id
    assert query["redirect_uri"] == f"{reports.url}/auth/callback"
    assert query["scope"] == "openid email"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["nonce"] and query["state"]
    landed = follow(browser.http, start)
    assert str(landed.url) == f"{reports.url}/"
    assert signed_in_as(browser, reports) == email


def test_a_callback_with_a_forged_state_signs_no_one_in(
    browser: Browser, reports: ReportsServer
) -> None:
    """A code arriving with a state this browser was not given is refused (400)."""
    browser.http.get(f"{reports.url}/login")  # a state is pending in this session
    answer = browser.http.get(f"{reports.url}/auth/callback?code=x&state=forged")
    assert answer.status_code == 400
    assert signed_in_as(browser, reports) is None


# --- back-channel logout -------------------------------------------------------------


def test_signing_out_at_keyturn_signs_the_user_out_of_reports(
    browser: Browser, reports: ReportsServer, email: str
) -> None:
    """The keyturn sign-out queues a logout token; the dispatcher delivers it to
    reports, which verifies it and ends the session: reports shows the user signed
    out within the bound."""
    sign_in_at_reports(browser, reports)
    assert signed_in_as(browser, reports) == email
    logged = "back-channel logout: 1 reports session(s) ended"
    before = reports.stderr.count(logged)
    browser.sign_out_at_keyturn()
    assert wait_signed_out(browser, reports) < DELIVERY_BOUND
    assert reports.stderr.count(logged) == before + 1  # keyturn's token, verified


def test_the_backchannel_endpoint_accepts_an_issuer_signed_token_once(
    browser: Browser, reports: ReportsServer, notes: NotesServer, email: str
) -> None:
    """A logout token signed with the issuer's key for this client ends the reports
    sessions of its sid (200, no-store); the same token again is refused (its jti
    was seen), and a token with only a sub ends every session of that user."""
    sign_in_at_reports(browser, reports)
    session = browser.whoami().json()
    kid, key = issuer_key(notes)
    token = signed(logout_claims(notes, reports, session["sub"], session["session_id"]), key, kid)
    answer = post_logout_token(reports, token)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert signed_in_as(browser, reports) is None
    again = post_logout_token(reports, token)
    assert again.status_code == 400 and "jti" in again.json()["error_description"]

    sign_in_at_reports(browser, reports)
    assert signed_in_as(browser, reports) == email
    by_sub = logout_claims(notes, reports, session["sub"], session["session_id"])
    del by_sub["sid"]
    assert post_logout_token(reports, signed(by_sub, key, kid)).status_code == 200
    assert signed_in_as(browser, reports) is None


BAD_TOKENS: dict[str, tuple[str, str]] = {
    # name: (what is wrong, a word of the error description)
    "unsigned": ("alg none", "alg"),
    "forged": ("signed by another key under the issuer's kid", "signature"),
    "unknown_kid": ("a kid the issuer never published", "key of the issuer"),
    "wrong_aud": ("aud is another client", "aud"),
    "wrong_iss": ("iss is another issuer", "iss"),
    "expired": ("exp has passed", "exp"),
    "with_nonce": ("carries a nonce", "nonce"),
    "no_events": ("no events claim", "events"),
    "wrong_event": ("events without the back-channel logout member", "events"),
    "no_sub_no_sid": ("neither sub nor sid", "neither sub nor sid"),
    "id_token_typ": ("typ JWT: an ID token", "typ"),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_the_backchannel_endpoint_refuses_invalid_logout_tokens(
    browser: Browser, reports: ReportsServer, notes: NotesServer, email: str, case: str
) -> None:
    """Each check of section 2.6 refuses the token with 400 and a JSON error naming
    it (no-store), and the user stays signed in to reports."""
    sign_in_at_reports(browser, reports)
    session = browser.whoami().json()
    kid, key = issuer_key(notes)
    claims = logout_claims(notes, reports, session["sub"], session["session_id"])
    typ = "logout+jwt"
    if case == "unsigned":
        token = unsigned(claims, kid)
    else:
        if case == "wrong_aud":
            claims["aud"] = "another-client"
        elif case == "wrong_iss":
            claims["iss"] = "http://127.0.0.1:1"
        elif case == "expired":
            claims["iat"], claims["exp"] = claims["iat"] - 600, claims["iat"] - 300
        elif case == "with_nonce":
            claims["nonce"] = "n-0S6_WzA2Mj"
        elif case == "no_events":
            del claims["events"]
        elif case == "wrong_event":
            claims["events"] = {"http://schemas.openid.net/event/other": {}}
        elif case == "no_sub_no_sid":
            del claims["sub"], claims["sid"]
        elif case == "id_token_typ":
            typ = "JWT"
        signing_key = RSAKey.generate_key(2048) if case == "forged" else key
        token = signed(claims, signing_key, "not-a-kid" if case == "unknown_kid" else kid, typ)
    answer = post_logout_token(reports, token)
    assert answer.status_code == 400, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["error"] == "invalid_request"
    assert BAD_TOKENS[case][1] in body["error_description"], body
    assert signed_in_as(browser, reports) == email


def test_the_backchannel_endpoint_needs_a_logout_token(reports: ReportsServer) -> None:
    """No ``logout_token`` field, or garbage in it: 400 with a JSON error."""
    with reports.client() as http:
        missing = http.post("/auth/backchannel-logout", data={"token": "x"})
        garbage = http.post("/auth/backchannel-logout", data={"logout_token": "not.a.jwt"})
    for answer in (missing, garbage):
        assert answer.status_code == 400
        assert answer.json()["error"] == "invalid_request"
        assert answer.headers["cache-control"] == "no-store"


# --- RP-initiated logout -------------------------------------------------------------


def test_reports_logout_ends_the_keyturn_session_and_comes_back_with_its_state(
    browser: Browser, reports: ReportsServer, notes: NotesServer
) -> None:
    """The sign-out form sends the browser to keyturn's end_session_endpoint with
    id_token_hint, post_logout_redirect_uri and state; keyturn ends its session (a
    valid hint: no confirmation) and returns to reports with that state, which
    reports checks."""
    page = sign_in_at_reports(browser, reports)
    csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    refused = browser.http.post(f"{reports.url}/logout", data={"csrf_token": "wrong"})
    assert refused.status_code == 403  # a cross-site form cannot sign the user out
    answer = browser.http.post(f"{reports.url}/logout", data={"csrf_token": csrf})
    assert answer.status_code == 303
    location = urlsplit(answer.headers["location"])
    query = {name: values[0] for name, values in parse_qs(location.query).items()}
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{notes.url}/oauth/logout"
    assert query["post_logout_redirect_uri"] == f"{reports.url}/auth/signed-out"
    assert query["id_token_hint"].count(".") == 2 and query["state"]
    assert signed_in_as(browser, reports) is None  # reports' own session ended at once

    back = browser.http.get(answer.headers["location"])
    assert back.status_code == 303
    returned = urlsplit(back.headers["location"])
    assert f"{returned.scheme}://{returned.netloc}{returned.path}" == (
        f"{reports.url}/auth/signed-out"
    )
    assert parse_qs(returned.query)["state"] == [query["state"]]
    assert browser.whoami().status_code == 401  # the keyturn session has ended
    landed = browser.http.get(back.headers["location"])
    assert landed.status_code == 200
    assert "signed out of reports and of keyturn" in landed.text
    replayed = browser.http.get(back.headers["location"])  # a state is good once
    assert replayed.status_code == 400


def test_the_signed_out_page_refuses_a_state_it_did_not_send(
    browser: Browser, reports: ReportsServer
) -> None:
    answer = browser.http.get(f"{reports.url}/auth/signed-out?state=forged")
    assert answer.status_code == 400


# --- the sign-in side knows nothing of keyturn ------------------------------------------


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved within examples."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x, from .logout_token import y
                package = ".".join(path.relative_to(REPO).with_suffix("").parts[: -node.level])
                base = f"{package}.{base}" if base else package
            names.add(base)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            names.add("<dynamic import>")
    return names


def test_the_sign_in_modules_import_nothing_from_keyturn() -> None:
    """signin.py and logout_token.py are a plain OIDC relying party: no keyturn
    module, directly or through another example module they import, and no
    dynamic import that could hide one."""
    checked = {path: imported_modules(REPO / path) for path in SIGN_IN_MODULES}
    own = {path.removesuffix(".py").replace("/", ".") for path in SIGN_IN_MODULES}
    for path, names in checked.items():
        assert "authlib.integrations.starlette_client" in names or "joserfc" in names, path
        for name in names:
            assert name != "keyturn" and not name.startswith("keyturn."), (path, name)
            assert name != "<dynamic import>", path
            if name.startswith("examples."):
                assert name in own, f"{path} imports {name}, which this test does not check"
