"""What keyturn reads from and writes into an ASGI scope.

:class:`~keyturn.web.authn.middleware.AuthnMiddleware` (or the Starlette
backend) resolves the caller once per request and leaves the answer under the
keys below; routes and dependencies only read them. The helpers read headers the
strict way every check here needs: a header sent twice counts as absent.
"""

from __future__ import annotations

import urllib.parse
from typing import Final

from starlette.types import Scope

__all__ = [
    "AUTH_ERROR_KEY",
    "CREDENTIAL_KEY",
    "DPOP_NONCE_KEY",
    "KEYTURN_KEY",
    "METRICS_KEY",
    "PREFIX_KEY",
    "PRINCIPAL_KEY",
    "SAFE_METHODS",
    "SESSION_SCOPE_KEY",
    "TOKEN_CLAIMS_KEY",
    "TOKEN_SCHEMES",
    "VALIDATED_SESSION_KEY",
    "access_token",
    "bearer_token",
    "dpop_proofs",
    "header",
    "query_token",
    "query_tokens",
    "route_path",
]

#: The :class:`~keyturn.principal.Principal` of the caller, or None.
PRINCIPAL_KEY: Final = "keyturn.principal"
#: The session secret when the caller came with a valid session cookie, else None.
SESSION_SCOPE_KEY: Final = "keyturn.session_secret"
#: The :class:`~keyturn.sessions.cache.ValidatedSession` behind a session caller, else absent.
VALIDATED_SESSION_KEY: Final = "keyturn.validated_session"
#: What the request *presented*: ``"session"``, ``"bearer"`` or None.
CREDENTIAL_KEY: Final = "keyturn.credential"
#: The error that made a presented credential fail, for a precise 401 later.
AUTH_ERROR_KEY: Final = "keyturn.auth_error"
#: The :class:`~keyturn.tokens.claims.AccessTokenClaims` of a bearer-authenticated request.
TOKEN_CLAIMS_KEY: Final = "keyturn.token_claims"  # noqa: S105 (a scope key, not a secret)
#: A fresh DPoP nonce to send in ``DPoP-Nonce`` with the answer (RFC 9449 section 8.2).
DPOP_NONCE_KEY: Final = "keyturn.dpop_nonce"
#: The :class:`~keyturn.runtime.Keyturn` serving the request.
KEYTURN_KEY: Final = "keyturn"
#: The path prefix keyturn's routes are mounted under (``""`` at the root).
PREFIX_KEY: Final = "keyturn.prefix"
#: The :class:`~keyturn.web.metrics.Metrics` of the installation (or absent).
METRICS_KEY: Final = "keyturn.metrics"

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def header(scope: Scope, name: bytes) -> str | None:
    """The single value of header ``name``; None if absent or sent more than once."""
    values = [value for key, value in scope.get("headers", ()) if key == name]
    if len(values) != 1:
        return None
    value: bytes = values[0]
    return value.decode("latin-1")


def route_path(scope: Scope) -> str:
    """The request path below the app's mount point: ``path`` without
    ``root_path`` (a ``Mount``, a proxy prefix), the path routes match on."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


def bearer_token(scope: Scope) -> str | None:
    """The credentials of an ``Authorization: Bearer`` header ("" if empty), else None."""
    found = access_token(scope)
    if found is None or found[0] != "bearer":
        return None
    return found[1]


#: The ``Authorization`` schemes that carry an access token (RFC 6750, RFC 9449).
TOKEN_SCHEMES: Final = frozenset({"bearer", "dpop"})


def access_token(scope: Scope) -> tuple[str, str] | None:
    """The lower-cased scheme and the credentials ("" if empty) of an
    ``Authorization: Bearer`` or ``Authorization: DPoP`` header, else None.
    Several ``Authorization`` headers are unusable: ``("bearer", "")``."""
    value = header(scope, b"authorization")
    if value is None:
        raw = [v for k, v in scope.get("headers", ()) if k == b"authorization"]
        return ("bearer", "") if raw else None
    scheme, _, credentials = value.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in TOKEN_SCHEMES:
        return None
    return scheme, credentials.strip()


def dpop_proofs(scope: Scope) -> list[str]:
    """Every ``DPoP`` header value of the request (the verifier wants exactly one)."""
    return [value.decode("latin-1") for key, value in scope.get("headers", ()) if key == b"dpop"]


def query_tokens(scope: Scope) -> list[str] | None:
    """The ``access_token`` values of the query string; None when it has none."""
    query: bytes = scope.get("query_string", b"")
    if b"access_token" not in query:  # the cheap test first: the hot path has none
        return None
    names = urllib.parse.parse_qs(query.decode("latin-1"), keep_blank_values=True)
    return names.get("access_token")


def query_token(scope: Scope) -> bool:
    """Whether the query string carries an ``access_token`` parameter."""
    return query_tokens(scope) is not None
