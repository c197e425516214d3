"""Redirect URIs: what a client may register, and when a requested one matches.

An authorization server that redirects to a URI it did not check exactly is an
open redirector that hands out codes (RFC 9700 sections 2.1 and 4.1). So:

* at registration, :func:`validate_redirect_uri` accepts only absolute ``https``
  URIs, or ``http`` on the loopback IP literals ``127.0.0.1`` and ``[::1]``
  (RFC 8252 section 7.3), with no fragment, no wildcard and no userinfo;
* at ``/oauth/authorize``, :func:`match_redirect_uri` compares by exact string
  (RFC 6749 section 3.1.2.3, RFC 9700 section 4.1.3), with the one exception
  RFC 8252 section 7.3 requires: a registered loopback URI matches the same URI
  on any port, because native apps get an ephemeral port from the OS.

Nothing is normalized: a URI is stored as registered and compared as sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlsplit

from keyturn.errors import InvalidRedirectUri

__all__ = [
    "is_loopback_redirect",
    "match_redirect_uri",
    "validate_redirect_uri",
    "validate_redirect_uris",
]

_MAX_LENGTH = 2000
#: Printable ASCII without space; a non-ASCII character must be percent-encoded.
_ALLOWED_CHARACTERS = re.compile(r"[\x21-\x7e]+")
#: The loopback form, anchored: host literal, optional port, then the rest
#: (path and query) that must be identical for a match. No fragment can occur.
_LOOPBACK = re.compile(
    r"http://(?P<host>127\.0\.0\.1|\[::1\])(?::(?P<port>[0-9]{1,5}))?(?P<rest>[/?][^#]*)?"
)
#: Parameters keyturn adds to the redirect; a registered query must not carry
#: them, or the client could read a value it put there itself.
_RESPONSE_PARAMETERS = frozenset(
    {"code", "state", "iss", "error", "error_description", "error_uri"}
)


def validate_redirect_uri(uri: str) -> str:
    """Return ``uri`` unchanged if a client may register it.

    ``localhost`` is refused, for ``http`` and ``https`` alike, with a pointer
    to the IP literal: RFC 8252 section 8.3 says the name is NOT RECOMMENDED,
    because an app listening on "localhost" may bind other interfaces than
    loopback, and the name may resolve to something else (hosts file, resolver,
    client firewall rules), whereas ``127.0.0.1`` and ``[::1]`` cannot. Only the
    IP literals get the any-port rule, so the refusal keeps that rule narrow.

    Raises:
        InvalidRedirectUri: a one-line reason: not absolute, too long, spaces
            or non-ASCII, a fragment, a wildcard ``*``, userinfo, a scheme other
            than ``https`` (or ``http`` on a loopback IP literal), upper case in
            scheme or host, a bad port, or a query that already carries a
            response parameter (``code``, ``state``, ``iss``, ``error``...).
    """
    if not isinstance(uri, str) or not uri:
        raise InvalidRedirectUri("a redirect URI must be a non-empty string")
    if len(uri) > _MAX_LENGTH:
        raise InvalidRedirectUri(f"a redirect URI is at most {_MAX_LENGTH} characters")
    if _ALLOWED_CHARACTERS.fullmatch(uri) is None:
        raise InvalidRedirectUri(
            "a redirect URI must be printable ASCII without spaces (percent-encode the rest)"
        )
    shown = uri if len(uri) <= 200 else uri[:200] + "..."
    if "#" in uri:
        raise InvalidRedirectUri(f"redirect URI {shown} has a fragment; fragments are not allowed")
    if "*" in uri:
        raise InvalidRedirectUri(f"redirect URI {shown} has a wildcard '*'; register exact URIs")
    if "\\" in uri:
        raise InvalidRedirectUri(f"redirect URI {shown} has a backslash")
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:  # a bad IPv6 literal or port
        raise InvalidRedirectUri(f"redirect URI {shown} has an invalid host or port") from None
    prefix = parts.scheme + "://"  # urlsplit lowers the scheme
    if not parts.scheme or not parts.netloc or not uri.lower().startswith(prefix):
        raise InvalidRedirectUri(f"redirect URI {shown} is not absolute (scheme://host/path)")
    if "@" in parts.netloc:
        raise InvalidRedirectUri(f"redirect URI {shown} has userinfo (user@host); drop it")
    if not host:
        raise InvalidRedirectUri(f"redirect URI {shown} has no host")
    if not uri.startswith(prefix) or parts.netloc != parts.netloc.lower():
        raise InvalidRedirectUri(f"redirect URI {shown}: write the scheme and host in lower case")
    if parts.netloc.endswith(":"):
        raise InvalidRedirectUri(f"redirect URI {shown} has an invalid port")
    if port == 0:
        raise InvalidRedirectUri(f"redirect URI {shown} has an invalid port")
    if host == "localhost" or host.endswith(".localhost"):
        raise InvalidRedirectUri(
            f"redirect URI {shown} uses localhost; use http://127.0.0.1 or http://[::1] "
            "(RFC 8252 section 8.3)"
        )
    if parts.scheme == "http":
        if not is_loopback_redirect(uri):
            raise InvalidRedirectUri(
                f"redirect URI {shown} must use https (http only on 127.0.0.1 or [::1])"
            )
    elif parts.scheme != "https":
        raise InvalidRedirectUri(
            f"redirect URI {shown} must use https (http only on 127.0.0.1 or [::1])"
        )
    reserved = {name for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    reserved &= _RESPONSE_PARAMETERS
    if reserved:
        raise InvalidRedirectUri(
            f"redirect URI {shown} has a query parameter keyturn adds itself: "
            + ", ".join(sorted(reserved))
        )
    return uri


def validate_redirect_uris(uris: Iterable[str]) -> tuple[str, ...]:
    """Every URI checked by :func:`validate_redirect_uri`, duplicates removed,
    in the order given.

    Raises:
        InvalidRedirectUri: the first URI that breaks a rule.
    """
    return tuple(dict.fromkeys(validate_redirect_uri(uri) for uri in uris))


def is_loopback_redirect(uri: str) -> bool:
    """Whether ``uri`` is an ``http`` redirect to ``127.0.0.1`` or ``[::1]``
    (with or without a port): the RFC 8252 section 7.3 form."""
    return _split_loopback(uri) is not None


def match_redirect_uri(requested: str, registered: Iterable[str]) -> str | None:
    """The redirect URI to use, if ``requested`` matches one of ``registered``.

    A match is exact string equality, except that a registered loopback URI
    (``http://127.0.0.1/...`` or ``http://[::1]/...``) matches the same URI on
    any port: scheme, host literal, path and query must still be identical.
    The result is ``requested`` itself, since the port it names is where the
    app listens. Returns None when nothing matches.
    """
    if not isinstance(requested, str) or not requested or len(requested) > _MAX_LENGTH:
        return None
    candidates = tuple(registered)
    if requested in candidates:
        return requested
    asked = _split_loopback(requested)
    if asked is None:
        return None
    for uri in candidates:
        if _split_loopback(uri) == asked:
            return requested
    return None


def _split_loopback(uri: str) -> tuple[str, str] | None:
    """``(host literal, path and query)`` of an http loopback URI, else None."""
    if _ALLOWED_CHARACTERS.fullmatch(uri) is None:
        return None
    found = _LOOPBACK.fullmatch(uri)
    if found is None:
        return None
    port = found.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        return None
    return found.group("host"), found.group("rest") or ""
