"""What every HTML page shares: the templates, rendering, redirects, form fields.

The pages themselves (SPEC "Browser pages") live in :mod:`keyturn.web.pages.signin`
(sign in, register) and :mod:`keyturn.web.pages.account` (account, sign-outs).

Server-rendered with Jinja2 (autoescaping on), one stylesheet, and one script
file for passkeys (``/static/keyturn-webauthn.js``); the CSP from
:class:`~keyturn.web.middleware.SecurityHeadersMiddleware` forbids inline scripts
and styles, and these templates use neither.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData

from keyturn.web.dependencies import base_path, get_keyturn

__all__ = [
    "ACCOUNT",
    "base_path",
    "form_field",
    "not_found_page",
    "redirect_to",
    "redirect_to_login",
    "render_page",
]

#: The account page: where a signed-in browser lands.
ACCOUNT = "/account"

_templates = Environment(
    loader=PackageLoader("keyturn.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render_page(
    request: Request,
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """``template`` rendered with ``context`` and the settings every page shows."""
    settings = get_keyturn(request).settings
    html = _templates.get_template(template).render(
        root=base_path(request),
        allow_registration=settings.allow_registration,
        min_password_length=settings.min_password_length,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=headers)


def redirect_to(request: Request, path: str) -> RedirectResponse:
    """A 303 to ``path`` under keyturn's base path (root path and prefix)."""
    return RedirectResponse(base_path(request) + path, status_code=303)


def redirect_to_login(request: Request) -> RedirectResponse:
    """A 303 to the sign-in page, coming back to the account page afterwards."""
    return redirect_to(request, "/login?next=" + base_path(request) + ACCOUNT)


def form_field(form: FormData, name: str) -> str:
    """A text field of a submitted form, or ``""`` (missing, or a file)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def not_found_page(request: Request) -> HTMLResponse:
    """The generic 404 page."""
    return render_page(
        request, "message.html", status=404, title="Not found", message="This page does not exist."
    )
