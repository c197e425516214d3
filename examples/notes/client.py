"""A mobile/CLI client of the notes app, speaking only HTTP.

What a native app does with keyturn's tokens, one step per line of output:

1. (with ``--register``) create the account: ``POST /auth/register``;
2. sign in with the OAuth 2.0 password grant: ``POST /oauth/token``
   (``grant_type=password``, ``scope=notes:read notes:write``): an access token
   (a JWT, short-lived) and a refresh token (opaque, single use);
3. create a note and list the notes: ``POST``/``GET /api/notes`` with
   ``Authorization: Bearer``;
4. refresh: ``POST /oauth/token`` (``grant_type=refresh_token``) returns a new
   pair, and the old refresh token is spent;
5. list again with the new access token;
6. sign out: ``POST /auth/logout`` with the bearer token revokes it and its
   whole refresh family; the client then shows that both are refused.

Run against a running notes app (``make example-notes``)::

    python -m examples.notes.client --url http://127.0.0.1:8000 --email me@example.com --register

The password is read from ``NOTES_PASSWORD`` or prompted for; it never goes on
the command line, where other users of the machine could see it. Exit status 0
when every step behaved as described, 1 otherwise.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

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


def run(http: httpx.Client, email: str, password: str, *, register: bool, title: str) -> None:
    """The whole flow (see the module doc).

    Raises:
        StepFailed: a step got an unexpected answer.
    """
    if register:
        response = http.post("/auth/register", json={"email": email, "password": password})
        if response.status_code == 409:
            say(f"register: {email} already exists, signing in")
        else:
            created = expect(response, 201, "register")
            say(f"register: created {created['email']} (id {created['id']})")

    grant = {"grant_type": "password", "username": email, "password": password, "scope": SCOPES}
    pair = expect(http.post("/oauth/token", data=grant), 200, "password grant")
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

    refresh = {"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]}
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
    again = {"grant_type": "refresh_token", "refresh_token": renewed["refresh_token"]}
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
    args = parser.parse_args(argv)

    password = os.environ.get("NOTES_PASSWORD") or getpass.getpass(f"password for {args.email}: ")
    with httpx.Client(base_url=args.url, timeout=30) as http:
        try:
            run(http, args.email, password, register=args.register, title=args.title)
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
