"""A mobile/CLI client of the notes app, speaking only HTTP.

What a native app does with keyturn, one step per line of output:

1. (with ``--register``) create the account: ``POST /auth/register``;
2. sign in **in the browser**, with the OAuth 2.1 authorization code flow for
   native apps (RFC 8252): listen on ``http://127.0.0.1:<free port>/callback``,
   open ``/oauth/authorize`` (PKCE ``S256``, ``state``) in the system browser, where
   the user signs in on keyturn's own page; the browser comes back to the
   listener with the code, which the client exchanges at ``POST /oauth/token``
   (``grant_type=authorization_code``, the ``code_verifier``) for an access token
   (a JWT, short-lived) and a refresh token (opaque, single use). The client never
   sees the password;
3. create a note and list the notes: ``POST``/``GET /api/notes`` with
   ``Authorization: Bearer``;
4. refresh: ``POST /oauth/token`` (``grant_type=refresh_token``) returns a new
   pair, and the old refresh token is spent;
5. list again with the new access token;
6. sign out: ``POST /auth/logout`` with the bearer token revokes it and its
   whole refresh family; the client then shows that both are refused.

Run against a running notes app (``make example-notes``)::

    python -m examples.notes.client --url http://127.0.0.1:8000 --email me@example.com --register

``--no-browser`` only prints the sign-in URL (open it yourself). The password is
needed only to create the account with ``--register``: it is read from
``NOTES_PASSWORD`` or prompted for, never taken from the command line, where other
users of the machine could see it. Exit status 0 when every step behaved as
described, 1 otherwise.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import os
import secrets
import sys
import threading
import webbrowser
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

SCOPES = "notes:read notes:write"


class StepFailed(Exception):
    """The server answered a step differently than the flow expects."""


def say(message: str) -> None:
    print(message, flush=True)


def expect(response: httpx.Response, status: int, step: str) -> Any:
    """The JSON body of ``response`` if its status is ``status``."""
    if response.status_code != status:
        raise StepFailed(f"{step}: expected {status}, got {response.status_code}: {response.text}")
    return response.json() if response.content else None


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class _Callback(BaseHTTPRequestHandler):
    """The loopback listener: takes the one redirect the browser brings back."""

    received: dict[str, str]
    done: threading.Event

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/callback":
            self.send_error(404)
            return
        type(self).received = {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = b"Signed in. You can close this window and go back to the terminal."
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        type(self).done.set()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def sign_in_in_browser(
    http: httpx.Client, email: str, *, open_browser: bool, timeout: float
) -> dict[str, Any]:
    """The authorization code flow with PKCE over a loopback redirect (see the
    module doc); returns the token response.

    Raises:
        StepFailed: no code came back in time, or the answer was not the expected one.
    """
    client_id = expect(http.get("/api/cli-client"), 200, "client id")["client_id"]
    handler = type("Callback", (_Callback,), {"received": {}, "done": threading.Event()})
    listener = HTTPServer(("127.0.0.1", 0), handler)
    redirect_uri = f"http://127.0.0.1:{listener.server_address[1]}/callback"
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    state = secrets.token_urlsafe(16)
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": SCOPES,
        "state": state,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        "login_hint": email,
    }
    url = f"{str(http.base_url).rstrip('/')}/oauth/authorize?{urlencode(query)}"
    thread = threading.Thread(target=listener.serve_forever, daemon=True)
    thread.start()
    try:
        say(f"sign in: open {url}")
        if open_browser:
            webbrowser.open(url)
        if not handler.done.wait(timeout):
            raise StepFailed(f"sign in: no answer from the browser within {timeout:.0f} s")
    finally:
        listener.shutdown()
        listener.server_close()
    answer = handler.received
    if answer.get("state") != state:
        raise StepFailed("sign in: the state that came back is not ours")
    if answer.get("iss") != str(http.base_url).rstrip("/"):
        raise StepFailed(f"sign in: unexpected issuer {answer.get('iss')!r}")
    if "code" not in answer:
        raise StepFailed(f"sign in: {answer.get('error')}: {answer.get('error_description')}")
    grant = {
        "grant_type": "authorization_code",
        "code": answer["code"],
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    pair: dict[str, Any] = expect(http.post("/oauth/token", data=grant), 200, "code exchange")
    pair["client_id"] = client_id
    return pair


def run(
    http: httpx.Client,
    email: str,
    password: str | None,
    *,
    register: bool,
    title: str,
    open_browser: bool = True,
    timeout: float = 300.0,
) -> None:
    """The whole flow (see the module doc).

    Raises:
        StepFailed: a step got an unexpected answer.
    """
    if register and password is not None:
        response = http.post("/auth/register", json={"email": email, "password": password})
        if response.status_code == 409:
            say(f"register: {email} already exists, signing in")
        else:
            created = expect(response, 201, "register")
            say(f"register: created {created['email']} (id {created['id']})")

    pair = sign_in_in_browser(http, email, open_browser=open_browser, timeout=timeout)
    client_id = pair.pop("client_id")
    say(
        f"token: {pair['token_type']} access token for {pair['expires_in']} s, "
        f"scope {pair.get('scope', '')!r}, refresh token received"
    )

    note = {"title": title, "body": "written by examples/notes/client.py"}
    created = expect(
        http.post("/api/notes", json=note, headers=bearer(pair["access_token"])), 201, "create"
    )
    say(f"create: note {created['id']} {created['title']!r}")

    listed = expect(http.get("/api/notes", headers=bearer(pair["access_token"])), 200, "list")
    say(f"list: {len(listed)} note(s): {', '.join(repr(n['title']) for n in listed)}")
    if not any(n["id"] == created["id"] for n in listed):
        raise StepFailed(f"list: note {created['id']} is missing")

    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": pair["refresh_token"],
        "client_id": client_id,
    }
    renewed = expect(http.post("/oauth/token", data=refresh), 200, "refresh")
    if renewed["refresh_token"] == pair["refresh_token"]:
        raise StepFailed("refresh: the refresh token was not rotated")
    say(f"refresh: new access token for {renewed['expires_in']} s, refresh token rotated")

    listed = expect(http.get("/api/notes", headers=bearer(renewed["access_token"])), 200, "list")
    say(f"list again: {len(listed)} note(s) with the refreshed token")

    expect(http.post("/auth/logout", headers=bearer(renewed["access_token"])), 204, "logout")
    say("logout: token and refresh family revoked")

    refused = http.get("/api/notes", headers=bearer(renewed["access_token"]))
    expect(refused, 401, "list after logout")
    say("after logout: the access token is refused (401)")
    again = {
        "grant_type": "refresh_token",
        "refresh_token": renewed["refresh_token"],
        "client_id": client_id,
    }
    error = expect(http.post("/oauth/token", data=again), 400, "refresh after logout")
    say(f"after logout: the refresh token is refused ({error['error']})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m examples.notes.client", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("NOTES_URL", "http://127.0.0.1:8000"),
        help="the notes app (NOTES_URL, default http://127.0.0.1:8000)",
    )
    parser.add_argument(
        "--email",
        default=os.environ.get("NOTES_EMAIL", "demo@example.com"),
        help="the account (NOTES_EMAIL, default demo@example.com)",
    )
    parser.add_argument("--register", action="store_true", help="create the account first")
    parser.add_argument("--title", default="Hello from the CLI client", help="the note's title")
    parser.add_argument(
        "--no-browser", action="store_true", help="only print the sign-in URL, open nothing"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the sign-in (300)"
    )
    args = parser.parse_args(argv)

    password = None
    if args.register:
        password = os.environ.get("NOTES_PASSWORD") or getpass.getpass(
            f"new password for {args.email}: "
        )
    with httpx.Client(base_url=args.url, timeout=30) as http:
        try:
            run(
                http,
                args.email,
                password,
                register=args.register,
                title=args.title,
                open_browser=not args.no_browser,
                timeout=args.timeout,
            )
        except StepFailed as exc:
            print(f"failed: {exc}", file=sys.stderr)
            return 1
        except httpx.HTTPError as exc:
            print(f"failed: cannot reach {args.url}: {exc}", file=sys.stderr)
            return 1
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
