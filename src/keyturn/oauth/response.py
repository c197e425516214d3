"""Authorization responses: where ``/oauth/authorize`` sends the browser.

Both the success and the error response are query parameters added to the
client's redirect URI (RFC 6749 sections 4.1.2 and 4.1.2.1). The URI may have
a query of its own, which MUST be kept (RFC 6749 section 3.1.2), so the
parameters are appended to the string as registered, never re-serialized.
Every response carries ``iss`` (RFC 9207 section 2), the defense against
mix-up attacks, and ``state`` when the request had one.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from keyturn.errors import RedirectedAuthorizationError

__all__ = ["append_query", "error_redirect", "redirect_for_error", "success_redirect"]

#: RFC 6749 section 4.1.2.1: error_description is %x20-21 / %x23-5B / %x5D-7E.
_NOT_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
_MAX_DESCRIPTION = 300


def append_query(uri: str, params: dict[str, str]) -> str:
    """``uri`` with ``params`` appended to its query, existing query kept.

    Raises:
        ValueError: ``uri`` has a fragment (registration refuses those).
    """
    if "#" in uri:
        raise ValueError("a redirect URI cannot carry a fragment")
    encoded = urlencode(params)
    if "?" not in uri:
        return f"{uri}?{encoded}"
    if uri.endswith(("?", "&")):
        return uri + encoded
    return f"{uri}&{encoded}"


def success_redirect(redirect_uri: str, *, code: str, state: str | None, issuer: str) -> str:
    """The redirect that delivers ``code`` (with ``state`` and ``iss``)."""
    params = {"code": code}
    if state is not None:
        params["state"] = state
    params["iss"] = issuer
    return append_query(redirect_uri, params)


def error_redirect(
    redirect_uri: str,
    *,
    error: str,
    state: str | None,
    issuer: str,
    description: str | None = None,
) -> str:
    """The redirect that reports ``error`` (a stable code such as
    ``invalid_scope``), with ``error_description``, ``state`` and ``iss``.

    The description is reduced to the characters RFC 6749 allows and to 300
    characters, so it is safe to put in the URI whatever it says.
    """
    params = {"error": error}
    if description:
        cleaned = _NOT_DESCRIPTION.sub("?", description)[:_MAX_DESCRIPTION]
        params["error_description"] = cleaned
    if state is not None:
        params["state"] = state
    params["iss"] = issuer
    return append_query(redirect_uri, params)


def redirect_for_error(error: RedirectedAuthorizationError, *, issuer: str) -> str:
    """The error redirect for ``error``, to its ``redirect_uri`` with its ``state``.

    Raises:
        ValueError: ``error.redirect_uri`` is not set (the error was raised
            before the redirect URI was validated: show an error page instead).
    """
    if error.redirect_uri is None:
        raise ValueError("this error has no validated redirect URI")
    return error_redirect(
        error.redirect_uri,
        error=error.code,
        state=error.state,
        issuer=issuer,
        description=error.detail,
    )
