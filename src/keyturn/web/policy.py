"""Per-route policy: :func:`require`.

::

    from keyturn.web import require

    @app.post("/notes", dependencies=[Depends(require(scopes=("notes:write",)))])
    async def add_note(...): ...

    @app.post("/account/email")
    async def change_email(p: Principal = Depends(require(accept=("session",), fresh=300))): ...

Checks run in this order, each with its own answer:

1. a caller at all: else 401 ``not_authenticated`` (``invalid_token`` when a
   token was sent and refused);
2. the credential kind (``accept``): a session-only route refuses a bearer
   token and a token-only route refuses a session cookie, 401
   ``not_authenticated`` with a message naming what the route accepts;
3. roles: the caller must hold every role listed, else 403 ``forbidden``;
4. scopes: a token must carry every scope listed, else 403
   ``insufficient_scope`` with ``WWW-Authenticate: Bearer
   error="insufficient_scope", scope="..."`` (RFC 6750 section 3.1);
5. a multi-factor sign-in (``mfa=True``): 401 ``insufficient_user_authentication``
   with ``acr_values`` (RFC 9470) when ``amr`` lacks ``mfa``;
6. a fresh sign-in (``fresh=N`` seconds): 401 ``insufficient_user_authentication``
   with ``WWW-Authenticate: Bearer error="insufficient_user_authentication",
   max_age="N"`` (RFC 9470) when the caller signed in longer ago, or the time is
   unknown; a browser re-authenticates with ``POST /auth/reauthenticate``, a
   token client with the password grant. Last, so nobody is asked to prove
   themselves again only to be refused for a missing role.

Scopes narrow what a *delegated* credential may do. A browser session is the
user in person, not a delegation, so scope requirements do not apply to it:
roles are what limit a session. Make a route ``accept=("token",)`` to demand a
scoped token.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable

from starlette.requests import HTTPConnection

from keyturn.errors import (
    Forbidden,
    InsufficientScope,
    InsufficientUserAuthentication,
    MultiFactorRequired,
    NotAuthenticated,
)
from keyturn.mfa.amr import ACR_MFA, is_multi_factor
from keyturn.principal import Principal, Via
from keyturn.web.dependencies import base_path, get_keyturn, require_principal

__all__ = ["Policy", "require"]

#: RFC 6749 section 3.3 scope-token characters.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_KINDS: dict[str, str] = {"session": "a session cookie", "token": "a bearer token"}


class Policy:
    """A route's requirements; call :meth:`check` on a principal, or use the
    instance as a FastAPI dependency (what :func:`require` returns).

    Attributes:
        roles: roles the caller must all hold.
        scopes: scopes a token caller must all carry.
        accept: the credential kinds the route takes (``"session"``, ``"token"``).
        fresh: the most seconds since the caller's sign-in, or None.
        mfa: the caller must have signed in with more than one factor.
    """

    __slots__ = ("accept", "fresh", "mfa", "roles", "scopes")

    def __init__(
        self,
        *,
        roles: Iterable[str] = (),
        scopes: Iterable[str] = (),
        accept: Iterable[Via] = ("session", "token"),
        fresh: int | None = None,
        mfa: bool = False,
    ) -> None:
        self.mfa = bool(mfa)
        self.roles = _strings("roles", roles)
        self.scopes = _strings("scopes", scopes)
        for scope in self.scopes:
            if not _SCOPE_TOKEN.fullmatch(scope):
                raise ValueError(f"invalid scope {scope!r} (RFC 6749 scope-token characters)")
        self.accept = _strings("accept", accept)
        if not self.accept or any(kind not in _KINDS for kind in self.accept):
            raise ValueError('accept must name "session", "token" or both')
        if fresh is not None and (isinstance(fresh, bool) or fresh < 0):
            raise ValueError("fresh must be a number of seconds >= 0")
        self.fresh = fresh

    def check(self, principal: Principal, *, now: float, base: str = "") -> Principal:
        """``principal`` if it meets the policy at ``now``; ``base`` is where
        keyturn's endpoints are mounted (for the re-authentication hint).

        Raises:
            NotAuthenticated: a credential kind the route does not accept.
            Forbidden: a role is missing.
            InsufficientScope: a token lacks a scope.
            InsufficientUserAuthentication: the sign-in is older than ``fresh``.
            MultiFactorRequired: ``mfa`` and the sign-in used one factor.
        """
        if principal.via not in self.accept:
            accepted = " or ".join(_KINDS[kind] for kind in self.accept)
            raise NotAuthenticated(f"This endpoint accepts {accepted} only.")
        if self.roles:
            missing = [role for role in self.roles if role not in principal.roles]
            if missing:
                raise Forbidden("You do not have the role this needs.")
        if self.scopes and principal.via == "token":
            held = principal.scopes
            if any(scope not in held for scope in self.scopes):
                raise InsufficientScope(" ".join(self.scopes))
        if self.mfa and not is_multi_factor(principal.amr):
            raise MultiFactorRequired(ACR_MFA)
        if self.fresh is not None:
            auth_time = principal.auth_time
            if auth_time is None or now - auth_time > self.fresh:
                how = (
                    f"re-authenticate (POST {base}/auth/reauthenticate)"
                    if principal.via == "session"
                    else "sign in again (password grant)"
                )
                raise InsufficientUserAuthentication(
                    self.fresh,
                    f"This needs a sign-in within the last {self.fresh} seconds: {how}.",
                )
        return principal

    async def __call__(self, request: HTTPConnection) -> Principal:
        """The FastAPI dependency: the caller, checked against this policy."""
        return self.check(
            require_principal(request),
            now=get_keyturn(request).clock.now(),
            base=base_path(request),
        )

    def __repr__(self) -> str:
        return (
            f"require(roles={self.roles!r}, scopes={self.scopes!r}, "
            f"accept={self.accept!r}, fresh={self.fresh!r}, mfa={self.mfa!r})"
        )


def _strings(name: str, values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):  # require(roles="admin") would mean five roles
        raise TypeError(f"{name} must be a sequence of strings, such as ({values!r},)")
    result = tuple(values)
    if not all(isinstance(value, str) and value for value in result):
        raise TypeError(f"{name} must be non-empty strings")
    return result


def require(
    *,
    roles: Iterable[str] = (),
    scopes: Iterable[str] = (),
    accept: Iterable[Via] = ("session", "token"),
    fresh: int | None = None,
    mfa: bool = False,
) -> Callable[[HTTPConnection], Awaitable[Principal]]:
    """A FastAPI dependency returning the caller when it meets the policy.

    Args:
        roles: roles the caller must all hold (403 ``forbidden``).
        scopes: scopes a token caller must all carry (403 ``insufficient_scope``);
            a session caller is the user in person and is not limited by scopes.
        accept: ``"session"``, ``"token"`` or both: which credentials the route
            takes (401 ``not_authenticated`` naming them otherwise).
        fresh: the caller must have signed in (or re-authenticated) at most this
            many seconds ago (401 ``insufficient_user_authentication``, RFC 9470).
        mfa: the caller must have signed in with a second factor or a passkey
            (``"mfa"`` in its ``amr``), else 401 ``insufficient_user_authentication``
            with ``acr_values`` naming the multi-factor ``acr``.

    Raises (from the dependency):
        NotAuthenticated, InvalidToken: no valid credential, or the wrong kind.
        InsufficientUserAuthentication: the sign-in is too old, or single-factor
            under ``mfa=True``.
        Forbidden: a role is missing.
        InsufficientScope: a token lacks a scope.

    Raises:
        ValueError, TypeError: the policy itself is malformed (at import time).
    """
    return Policy(roles=roles, scopes=scopes, accept=accept, fresh=fresh, mfa=mfa)
