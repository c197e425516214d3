"""``GET /auth/whoami``'s answer, built once per validated read and sent without the framework.

whoami is the most frequent authenticated call (a single-page app asks it on
every load), so its answer is cheap twice over:

- For a session caller the answer is a pure function of what the store said
  (the session and its user) and of the cookie secret (the CSRF header), so it
  is rendered once and kept with the validated read
  (:attr:`~keyturn.sessions.cache.ValidatedSession.memo`); it is dropped with
  that read, so a changed role or e-mail shows as soon as the session is re-read.
- :class:`~keyturn.web.authn.middleware.AuthnMiddleware` sends it itself once the
  caller is resolved (:func:`send_whoami`), skipping routing and the endpoint
  machinery. Only a successful ``GET`` is answered there: every other method,
  every refusal (401 and its ``WWW-Authenticate``) and every error still goes
  through the FastAPI route, which renders the same answer with the same bytes
  (:func:`whoami_answer`). The outer middleware (security headers, metrics,
  error boundary) and the access log see the request as before.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from starlette.types import Scope, Send

from keyturn.clock import isoformat
from keyturn.csrf import HEADER as CSRF_HEADER
from keyturn.csrf import session_csrf_token
from keyturn.web.authn.scope import (
    PRINCIPAL_KEY,
    SESSION_SCOPE_KEY,
    TOKEN_CLAIMS_KEY,
    VALIDATED_SESSION_KEY,
)

if TYPE_CHECKING:
    from keyturn.principal import Principal
    from keyturn.sessions.cache import ValidatedSession
    from keyturn.tokens.claims import AccessTokenClaims

__all__ = ["WHOAMI_PATH", "Answer", "send_whoami", "whoami_answer"]

#: Where the route lives below keyturn's prefix.
WHOAMI_PATH: Final = "/auth/whoami"

#: A rendered answer: the JSON body and its headers (names lower-case, as ASGI sends them).
Answer = tuple[bytes, list[tuple[bytes, bytes]]]

_MEMO_KEY: Final = "whoami"
_CSRF_HEADER: Final = CSRF_HEADER.lower().encode("latin-1")
_JSON: Final = (b"content-type", b"application/json")


def _render(body: dict[str, Any], csrf_token: str | None) -> Answer:
    """The body as Starlette's ``JSONResponse`` renders it, with its headers in
    the same order (the route's extra header first, then length and type)."""
    content = json.dumps(
        body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")
    headers = [] if csrf_token is None else [(_CSRF_HEADER, csrf_token.encode("latin-1"))]
    headers += [(b"content-length", str(len(content)).encode("latin-1")), _JSON]
    return content, headers


def _body(principal: Principal) -> dict[str, Any]:
    return {
        "sub": principal.subject,
        "email": principal.email,
        "roles": list(principal.roles),
        "via": principal.via,
        "session_id": principal.session_id,
        "expires_at": isoformat(principal.expires_at),
    }


def whoami_answer(scope: Scope) -> Answer | None:
    """The answer for the caller resolved into ``scope``, or None when there is
    no caller (the route then refuses with 401).

    Cookie callers also get their CSRF token in a header, so a reloaded
    single-page app can recover it without a new sign-in. For a token caller
    ``session_id`` is the token's ``sid`` and ``expires_at`` its ``exp``.
    """
    principal: Principal | None = scope.get(PRINCIPAL_KEY)
    if principal is None:
        return None
    if principal.via == "token":
        claims: AccessTokenClaims | None = scope.get(TOKEN_CLAIMS_KEY)
        if claims is None:
            return None
        body = _body(principal)
        body["session_id"], body["expires_at"] = claims.sid, isoformat(claims.exp)
        return _render(body, None)
    secret: str | None = scope.get(SESSION_SCOPE_KEY)
    validated: ValidatedSession | None = scope.get(VALIDATED_SESSION_KEY)
    if validated is None:  # a caller resolved by something other than keyturn's resolver
        csrf_token = session_csrf_token(secret) if secret is not None else None
        return _render(_body(principal), csrf_token)
    memo: tuple[str | None, Answer] | None = validated.memo.get(_MEMO_KEY)
    if memo is not None and memo[0] == secret:
        return memo[1]
    csrf_token = session_csrf_token(secret) if secret is not None else None
    answer = _render(_body(principal), csrf_token)
    validated.memo[_MEMO_KEY] = (secret, answer)  # the CSRF header belongs to this secret
    return answer


async def send_whoami(scope: Scope, send: Send, route: object) -> bool:
    """Send the 200 answer for the resolved caller and return True, or return
    False (nothing sent) when there is none. ``route`` is the FastAPI route,
    recorded in ``scope["route"]`` as routing would, for the metrics' label."""
    answer = whoami_answer(scope)
    if answer is None:
        return False
    content, headers = answer
    scope["route"] = route
    await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
    await send({"type": "http.response.body", "body": content})
    return True
