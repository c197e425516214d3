"""The notes application: keyturn as a library inside an ordinary FastAPI app.

- Browser pages (``/``, ``POST /notes``) are server-rendered and use the session
  cookie that keyturn's own ``/login`` and ``/register`` pages set. Their forms
  carry the session's CSRF token; keyturn's middleware refuses a cookie-
  authenticated POST without it before this code runs.
- The JSON API (``/api/notes``) takes a bearer token from ``/oauth/token`` (the
  mobile/CLI client in ``client.py``, signed in with the authorization code flow:
  its client_id is ``GET /api/cli-client``) or the session cookie (with the
  ``X-CSRF-Token`` header for writes), and checks the ``notes:read`` and
  ``notes:write`` scopes.
- Everything keyturn serves (``/login``, ``/auth/*``, ``/oauth/*``, the JWKS
  that the ``reports`` service verifies with) comes from ``install()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel, StringConstraints

from examples.notes.store import NoteStore
from keyturn import Keyturn, Principal, Settings
from keyturn.csrf import session_csrf_token
from keyturn.errors import NotFound
from keyturn.web import install, optional_principal, require
from keyturn.web.dependencies import session_secret

TEMPLATES = Path(__file__).parent / "templates"
#: The CLI client's registration (see ensure_cli_client).
CLI_CLIENT = "notes-cli"
CLI_REDIRECT = "http://127.0.0.1/callback"
MAX_TITLE = 200
MAX_BODY = 10_000

#: The JSON API's policies. Tokens need the scope; a browser session is the user
#: in person, which scopes do not limit (keyturn.web.policy).
READ = require(scopes=("notes:read",))
WRITE = require(scopes=("notes:write",))

_pages = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class NoteIn(BaseModel):
    """A new note, as the JSON API takes it."""

    title: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE)
    ]
    body: Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_BODY)] = ""


def create_app(settings: Settings, notes_db: Path) -> FastAPI:
    """The notes app on ``settings`` (keyturn's users, sessions and keys) and the
    SQLite file ``notes_db`` (the notes)."""
    kt = Keyturn(settings)
    notes = NoteStore(notes_db)
    app = FastAPI(title="notes", lifespan=kt.lifespan)
    # keyturn's routes at the root (/login, /auth/*, /oauth/*, /.well-known/*,
    # /healthz); all_errors: the notes API answers errors in keyturn's
    # {"error", "detail"} shape too, validation errors included.
    install(app, kt, health_checks=True, all_errors=True)

    def page(request: Request, template: str, *, status: int = 200, **context: Any) -> Response:
        principal: Principal | None = context.get("principal")
        if principal is not None:  # every signed-in page has the sign-out form
            context["csrf_token"] = csrf_token(request)
        html = _pages.get_template(template).render(**context)
        # A signed-in page shows private notes: no cache may keep it.
        headers = {"Cache-Control": "no-store"} if principal is not None else None
        return HTMLResponse(html, status_code=status, headers=headers)

    # --- browser pages (session cookie) ------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    async def home(
        request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]
    ) -> Response:
        if principal is None or principal.via != "session":
            return page(request, "welcome.html", principal=None)
        return page(
            request,
            "notes.html",
            principal=principal,
            notes=await notes.list(principal.subject),
            error=None,
            title="",
            body="",
            max_title=MAX_TITLE,
            max_body=MAX_BODY,
        )

    @app.post("/notes")
    async def add_from_form(
        request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]
    ) -> Response:
        if principal is None or principal.via != "session":
            return RedirectResponse("/login?next=/", status_code=303)
        form = await request.form()
        title, body = (form.get(name) for name in ("title", "body"))
        title = title.strip() if isinstance(title, str) else ""
        body = body.strip() if isinstance(body, str) else ""
        if not title or len(title) > MAX_TITLE or len(body) > MAX_BODY:
            return page(
                request,
                "notes.html",
                status=400,
                principal=principal,
                notes=await notes.list(principal.subject),
                error=(
                    f"A note needs a title of at most {MAX_TITLE} characters, "
                    f"and at most {MAX_BODY} characters of text."
                ),
                title=title[:MAX_TITLE],
                body=body[:MAX_BODY],
                max_title=MAX_TITLE,
                max_body=MAX_BODY,
            )
        await notes.add(principal.subject, title, body)
        return RedirectResponse("/", status_code=303)  # post/redirect/get

    # --- JSON API (bearer token or session) --------------------------------------

    @app.get("/api/notes")
    async def list_notes(principal: Annotated[Principal, Depends(READ)]) -> list[dict[str, Any]]:
        return [note.to_dict() for note in await notes.list(principal.subject)]

    @app.post("/api/notes", status_code=201)
    async def add_note(
        new: NoteIn, principal: Annotated[Principal, Depends(WRITE)]
    ) -> dict[str, Any]:
        note = await notes.add(principal.subject, new.title, new.body)
        return note.to_dict()

    @app.delete("/api/notes/{note_id}", status_code=204)
    async def delete_note(note_id: int, principal: Annotated[Principal, Depends(WRITE)]) -> None:
        if not await notes.delete(principal.subject, note_id):
            raise NotFound("No such note.")

    # --- the CLI client's registration --------------------------------------------

    @app.get("/api/cli-client")
    async def cli_client() -> dict[str, str]:
        """The ``client_id`` of the notes CLI (a public, first-party OAuth client
        with the loopback redirect URI), registered on first use. A real native
        app has its client_id built in; publishing it here saves the example a
        setup step."""
        return {"client_id": await ensure_cli_client(kt)}

    return app


async def ensure_cli_client(kt: Keyturn) -> str:
    """The id of the ``notes-cli`` client, registering it if there is none: public
    (PKCE is its proof), first-party (no consent page), ``http://127.0.0.1/callback``
    on any port (RFC 8252 section 7.3), the notes scopes."""
    for client in await kt.clients.list():
        if client.name == CLI_CLIENT and client.redirect_uris == (CLI_REDIRECT,):
            return client.id
    created = await kt.clients.add(
        CLI_CLIENT,
        first_party=True,
        redirect_uris=[CLI_REDIRECT],
        scopes=["notes:read", "notes:write"],
    )
    return created.client.id


def csrf_token(request: Request) -> str:
    """The CSRF token of the request's session, for the forms on the page."""
    secret = session_secret(request)
    if not secret:
        raise RuntimeError("csrf_token() needs a session-authenticated request")
    return session_csrf_token(secret)
