"""CSP ``form-action`` for forms whose answer redirects to an OAuth client.

Browsers apply ``form-action`` to every redirect that follows a form submission
(CSP Level 3), so the sign-in form (``POST /login`` -> ``/oauth/authorize`` -> the
client's redirect URI) and the consent form (``POST /oauth/authorize`` -> the
client) would be blocked by keyturn's ``form-action 'self'``. These pages send
the HTML policy with the client's origin added to ``form-action``, and only
there: every other page keeps ``'self'``.

Where the sign-in page cannot see the redirect URI (a pushed request behind a
``request_uri``), it allows what a redirect URI may be at all: ``https:`` and
the loopback literals (``keyturn.oauth.redirects`` refuses anything else).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from keyturn.web.middleware import HTML_CSP

__all__ = ["csp_for_next", "csp_with_form_action", "origin_of"]

#: What any registered redirect URI may be (https, or http on a loopback literal).
_ANY_REDIRECT = "https: http://127.0.0.1:* http://[::1]:*"
_AUTHORIZE = "/oauth/authorize"


def csp_with_form_action(sources: str) -> str:
    """The HTML policy with ``sources`` added to ``form-action``."""
    return HTML_CSP.replace("form-action 'self'", f"form-action 'self' {sources}".rstrip())


def origin_of(uri: str) -> str | None:
    """``scheme://host[:port]`` of an http(s) URI, or None."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return None
    if any(char in parts.netloc for char in " ;,'\""):
        return None
    return f"{parts.scheme}://{parts.netloc}"


def csp_for_next(root: str, next_path: str | None) -> str | None:
    """The sign-in page's policy when ``next`` is an authorization request, else
    None (the default policy applies)."""
    if not next_path or not next_path.startswith(root + _AUTHORIZE + "?"):
        return None
    query = parse_qs(urlsplit(next_path).query)
    redirect = query.get("redirect_uri", [""])[0]
    origin = origin_of(redirect) if redirect else None
    return csp_with_form_action(origin or _ANY_REDIRECT)
