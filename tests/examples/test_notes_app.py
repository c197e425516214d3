"""The notes app (examples/notes) over HTTP, as a real process: its JSON API with
bearer tokens and sessions, scopes, CSRF on its own forms, and per-user notes."""

from __future__ import annotations

import re

from tests.examples.processes import PASSWORD, NotesServer
from tests.support import session_cookie

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(notes: NotesServer, email: str) -> tuple[str, str]:
    """``POST /auth/login``: (session cookie value, CSRF token)."""
    with notes.client() as http:
        response = http.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return session_cookie(response), response.json()["csrf_token"]


def test_api_refuses_requests_without_a_valid_credential(notes: NotesServer) -> None:
    """No credential: 401 with ``WWW-Authenticate: Bearer``; a garbage token: 401
    ``invalid_token``."""
    with notes.client() as http:
        anonymous = http.get("/api/notes")
        garbage = http.get("/api/notes", headers=bearer("not-a-token"))
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert garbage.status_code == 401
    assert garbage.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in garbage.headers["www-authenticate"]


def test_api_checks_the_token_scopes(notes: NotesServer, email: str) -> None:
    """``notes:read`` lists but may not write (403 ``insufficient_scope``); a token
    without notes scopes may do neither; ``notes:write`` creates."""
    read_only = notes.token(email, "notes:read")["access_token"]
    no_scope = notes.token(email, "profile")["access_token"]
    read_write = notes.token(email, "notes:read notes:write")["access_token"]
    note = {"title": "scoped", "body": ""}
    with notes.client() as http:
        assert http.get("/api/notes", headers=bearer(read_only)).status_code == 200
        refused = http.post("/api/notes", json=note, headers=bearer(read_only))
        assert refused.status_code == 403
        assert refused.json()["error"] == "insufficient_scope"
        assert http.get("/api/notes", headers=bearer(no_scope)).status_code == 403
        created = http.post("/api/notes", json=note, headers=bearer(read_write))
        assert created.status_code == 201, created.text
        listed = http.get("/api/notes", headers=bearer(read_only)).json()
    assert [n["title"] for n in listed] == ["scoped"]
    assert listed[0]["id"] == created.json()["id"]


def test_the_issuer_hands_out_only_the_apps_scopes(notes: NotesServer, email: str) -> None:
    """The notes app's keyturn grants the notes and reports scopes, and refuses a
    scope it was not told about with 400 ``invalid_scope`` (#10 item 10c)."""
    granted = notes.token(email, "notes:read reports:read openid")
    assert granted["scope"] == "notes:read reports:read openid"
    with notes.client() as http:
        refused = http.post(
            "/oauth/token",
            data={
                "grant_type": "password",
                "username": email,
                "password": PASSWORD,
                "scope": "notes:admin",
            },
        )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope"


def test_api_validates_new_notes(notes: NotesServer, email: str) -> None:
    """A note without a title, or with a huge one, is a 4xx in keyturn's error shape."""
    token = notes.token(email, "notes:write")["access_token"]
    with notes.client() as http:
        for body in ({"body": "no title"}, {"title": ""}, {"title": "x" * 201}):
            response = http.post("/api/notes", json=body, headers=bearer(token))
            assert 400 <= response.status_code < 500, response.text
            assert "error" in response.json()


def test_notes_are_private_to_their_owner(notes: NotesServer, email: str) -> None:
    """Another user lists none of this user's notes, and cannot delete them."""
    other = notes.register()
    mine = notes.token(email, "notes:read notes:write")["access_token"]
    theirs = notes.token(other, "notes:read notes:write")["access_token"]
    with notes.client() as http:
        created = http.post("/api/notes", json={"title": "mine"}, headers=bearer(mine)).json()
        assert http.get("/api/notes", headers=bearer(theirs)).json() == []
        gone = http.delete(f"/api/notes/{created['id']}", headers=bearer(theirs))
        assert gone.status_code == 404
        assert [n["title"] for n in http.get("/api/notes", headers=bearer(mine)).json()] == ["mine"]
        assert http.delete(f"/api/notes/{created['id']}", headers=bearer(mine)).status_code == 204
        assert http.get("/api/notes", headers=bearer(mine)).json() == []


def test_api_accepts_the_session_cookie_with_csrf_for_writes(
    notes: NotesServer, email: str
) -> None:
    """A browser session may use the API too: reads with the cookie alone, writes only
    with the session's CSRF token in ``X-CSRF-Token`` (403 ``csrf_failed`` without)."""
    cookie, csrf = sign_in(notes, email)
    headers = {"Cookie": f"__Host-keyturn_session={cookie}"}
    note = {"title": "from the browser session"}
    with notes.client() as http:
        assert http.get("/api/notes", headers=headers).json() == []
        forged = http.post("/api/notes", json=note, headers=headers)
        assert forged.status_code == 403
        assert forged.json()["error"] == "csrf_failed"
        created = http.post("/api/notes", json=note, headers={**headers, "X-CSRF-Token": csrf})
        assert created.status_code == 201, created.text
        assert [n["title"] for n in http.get("/api/notes", headers=headers).json()] == [
            note["title"]
        ]


def test_pages_show_the_notes_and_the_form_needs_the_csrf_token(
    notes: NotesServer, email: str
) -> None:
    """Signed out, ``/`` links to keyturn's sign-in; signed in, it lists the notes.
    The note form is refused without the session's CSRF token (keyturn's middleware
    guards the host app's own routes) and works with the token the page embeds."""
    with notes.client() as http:
        welcome = http.get("/")
        assert welcome.status_code == 200
        assert 'href="/login?next=/"' in welcome.text
        assert http.post("/notes", data={"title": "x"}).headers["location"] == "/login?next=/"

        cookie, _ = sign_in(notes, email)
        headers = {"Cookie": f"__Host-keyturn_session={cookie}"}
        page = http.get("/", headers=headers)
        assert page.status_code == 200
        assert email in page.text and "No notes yet." in page.text
        token = CSRF_FIELD.search(page.text)
        assert token is not None

        forged = http.post("/notes", data={"title": "forged"}, headers=headers)
        assert forged.status_code == 403
        assert forged.json()["error"] == "csrf_failed"
        cross_site = http.post(
            "/notes",
            data={"title": "cross-site", "csrf_token": token.group(1)},
            headers={**headers, "Origin": "https://evil.example"},
        )
        assert cross_site.status_code == 403

        blank = http.post(
            "/notes", data={"title": "  ", "csrf_token": token.group(1)}, headers=headers
        )
        assert blank.status_code == 400 and 'role="alert"' in blank.text

        added = http.post(
            "/notes",
            data={"title": "A <b>bold</b> idea", "body": "kept", "csrf_token": token.group(1)},
            headers=headers,
        )
        assert added.status_code == 303 and added.headers["location"] == "/"
        page = http.get("/", headers=headers)
    assert "A &lt;b&gt;bold&lt;/b&gt; idea" in page.text  # escaped, never markup
    assert "forged" not in page.text and "cross-site" not in page.text


def test_the_app_serves_keyturn_endpoints(notes: NotesServer) -> None:
    """``install()`` put keyturn's routes on the app: health, discovery naming this
    server as the issuer, and a JWKS with public keys only."""
    with notes.client() as http:
        health = http.get("/healthz")
        metadata = http.get("/.well-known/oauth-authorization-server").json()
        jwks = http.get("/.well-known/jwks.json").json()
    assert health.status_code == 200
    assert metadata["issuer"] == notes.url
    assert metadata["jwks_uri"] == f"{notes.url}/.well-known/jwks.json"
    assert jwks["keys"] and all("d" not in key for key in jwks["keys"])
