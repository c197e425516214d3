"""The reports service: trusts the notes app's users through its JWKS alone.

It has no database access and runs no keyturn runtime. It knows only the
issuer URL: :class:`keyturn.verify.RemoteVerifier` fetches the issuer's
metadata and JWK Set, and verifies each bearer token's signature and claims
(``iss``, ``aud``, ``exp``, the algorithm pinned per key) in process.

Revocation: a signature proves that a token was issued, not that it was not
revoked since. Given the credentials of a confidential client registered on the
notes app (``introspection=(client_id, secret)``), the verifier also asks the
issuer's introspection endpoint (RFC 7662) and caches a positive answer for at
most ``introspection_cache_ttl`` seconds: a token revoked on the notes app
(sign-out, "sign out everywhere", password change) is refused here within that
bound. Without them, a revoked token stays usable here until it expires.

Its own data (the reports a user saved) lives in memory, keyed by ``sub``.

Browser pages: with a client registration (``sign_in``), people sign in to
reports through keyturn with OpenID Connect and are signed out again by the
issuer's back-channel logout (:mod:`examples.reports.signin`). That side is a
plain OIDC relying party (Authlib) and imports nothing from keyturn; the bearer
API above keeps keyturn's downstream-verifier SDK.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel, Field

from examples.reports.signin import SignInSettings, install_sign_in
from keyturn.errors import InsufficientScope
from keyturn.verify import AccessTokenClaims, RemoteVerifier
from keyturn.web.verify_dependency import bearer_claims, install_error_handler

READ_SCOPE = "reports:read"
WRITE_SCOPE = "reports:write"


@dataclass
class Reports:
    """What one reports process holds: the verifier and the users' data."""

    verifier: RemoteVerifier
    mode: str
    claims: Callable[[Request], Awaitable[AccessTokenClaims]]
    sign_in: str  # "oidc" (browser sign-in through the issuer) or "off"
    saved: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    requests: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


def reports_of(request: Request) -> Reports:
    state: Reports = request.app.state.reports
    return state


def scoped(scope: str) -> Callable[[Request], Awaitable[AccessTokenClaims]]:
    """A dependency: the verified claims of the bearer token, which must carry ``scope``
    (401 for a missing or refused token, 403 ``insufficient_scope``)."""

    async def dependency(request: Request) -> AccessTokenClaims:
        reports = reports_of(request)
        claims = await reports.claims(request)
        if scope not in claims.scopes:
            raise InsufficientScope(scope)
        reports.requests[claims.sub] += 1
        return claims

    return dependency


Reader = Annotated[AccessTokenClaims, Depends(scoped(READ_SCOPE))]
Writer = Annotated[AccessTokenClaims, Depends(scoped(WRITE_SCOPE))]
State = Annotated[Reports, Depends(reports_of)]

router = APIRouter()


class ReportIn(BaseModel):
    """A report to save."""

    title: str = Field(min_length=1, max_length=200)


@router.get("/healthz")
async def healthz(reports: State) -> dict[str, str]:
    return {
        "status": "ok",
        "issuer": reports.verifier.issuer,
        "revocation": reports.mode,
        "sign_in": reports.sign_in,
    }


@router.get("/reports/summary")
async def summary(claims: Reader, reports: State) -> dict[str, Any]:
    """Counts for the caller."""
    return {
        "subject": claims.sub,
        "reports": len(reports.saved[claims.sub]),
        "requests": reports.requests[claims.sub],
        "scopes": list(claims.scopes),
        "token_expires_in": max(0, claims.exp - int(time.time())),
        "revocation": reports.mode,
    }


@router.get("/reports")
async def list_reports(claims: Reader, reports: State) -> list[dict[str, Any]]:
    return reports.saved[claims.sub]


@router.post("/reports", status_code=201)
async def save_report(new: ReportIn, claims: Writer, reports: State) -> dict[str, Any]:
    report = {"id": next(reports.ids), "title": new.title, "created_at": time.time()}
    reports.saved[claims.sub].append(report)
    return report


def create_app(
    issuer: str,
    *,
    audience: str | None = None,
    introspection: tuple[str, str] | None = None,
    introspection_cache_ttl: float = 2.0,
    sign_in: SignInSettings | None = None,
    session_secret: str | None = None,
) -> FastAPI:
    """The reports app for tokens of ``issuer`` carrying ``aud`` = ``audience``
    (keyturn's default audience is the issuer URL itself), with browser sign-in
    when ``sign_in`` is given (its session cookie signed with ``session_secret``,
    random when None)."""
    verifier = RemoteVerifier(
        issuer,
        audience=audience or issuer,
        introspection=introspection,
        introspection_cache_ttl=introspection_cache_ttl,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The issuer may start after this service: keys are fetched on first use.
        try:
            yield
        finally:
            await verifier.aclose()

    app = FastAPI(title="reports", lifespan=lifespan)
    install_sign_in(app, sign_in, session_secret=session_secret or secrets.token_urlsafe(32))
    app.state.reports = Reports(
        verifier=verifier,
        mode="introspection" if introspection else "signature-only",
        claims=bearer_claims(verifier),
        sign_in="oidc" if sign_in else "off",
    )
    install_error_handler(app)  # keyturn's errors as keyturn renders them (401/403/503)
    app.include_router(router)
    return app
