"""The caller's sign-ins over the JSON API: ``GET /auth/sessions`` lists them,
``DELETE /auth/sessions/{id}`` ends one.

A sign-in is a browser session (``"kind": "browser"``, by its public handle) or
a refresh family (``"kind": "token"``, the password grant's sign-in). Either
credential may ask, a session cookie or an access token; ``current`` marks the
caller's own row.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from keyturn.clock import isoformat
from keyturn.errors import NotFound
from keyturn.principal import Principal
from keyturn.web.authn.cookies import clear_session_cookie
from keyturn.web.dependencies import CurrentPrincipal, client_ip, get_keyturn
from keyturn.web.routes.openapi_docs import BEARER_OR_SESSION, SIGN_INS, answer, error_responses

router = APIRouter(prefix="/auth", tags=["auth"])

__all__ = ["router"]


@router.get(
    "/sessions",
    openapi_extra=BEARER_OR_SESSION,
    responses=error_responses(401, _200=answer("The caller's sign-ins.", SIGN_INS)),
)
async def list_sessions(request: Request, principal: CurrentPrincipal) -> JSONResponse:
    """The caller's active sign-ins, browser sessions and refresh families
    (``"kind": "token"``), oldest first; ``current`` marks the caller's own."""
    keyturn = get_keyturn(request)
    sessions = await keyturn.sessions.list_for_user(principal.subject)
    families = await keyturn.refresh_families.list_live(principal.subject)
    ttl = keyturn.settings.refresh_token_ttl
    rows: list[tuple[float, dict[str, Any]]] = [
        (
            session.created_at,
            _sign_in_row(
                session.handle,
                "browser",
                session.created_at,
                session.last_seen_at,
                session.ends_at,
                session.ip,
                session.user_agent,
                principal,
            ),
        )
        for session in sessions
    ]
    rows += [
        (
            family.created_at,
            _sign_in_row(
                family.id,
                "token",
                family.created_at,
                family.last_used_at,
                family.ends_at(ttl),
                family.ip,
                family.user_agent,
                principal,
            ),
        )
        for family in families
    ]
    rows.sort(key=lambda row: row[0])
    return JSONResponse([row for _, row in rows])


def _sign_in_row(
    handle: str,
    kind: str,
    created_at: float,
    last_seen_at: float,
    expires_at: float,
    ip: str | None,
    agent: str | None,
    principal: Principal,
) -> dict[str, Any]:
    return {
        "id": handle,
        "kind": kind,
        "created_at": isoformat(created_at),
        "last_seen_at": isoformat(last_seen_at),
        "expires_at": isoformat(expires_at),
        "ip": ip,
        "user_agent": agent,
        "current": handle == principal.session_id,
    }


@router.delete(
    "/sessions/{session_id}",
    status_code=204,
    openapi_extra=BEARER_OR_SESSION,
    responses=error_responses(401, 403, 404, _204=answer("The sign-in ended.")),
)
async def revoke_session(
    request: Request, session_id: str, principal: CurrentPrincipal
) -> Response:
    """End one of the caller's sign-ins, a browser session or a refresh family
    (404 ``not_found`` if it is not theirs)."""
    keyturn = get_keyturn(request)
    try:
        await keyturn.auth.revoke_session(principal.subject, session_id, ip=client_ip(request))
    except NotFound:
        await keyturn.token_revoker.end_family(principal.subject, session_id)
    response = Response(status_code=204)
    if principal.via == "session" and session_id == principal.session_id:
        clear_session_cookie(response)
    return response
