"""The "Connected apps" section of ``/account`` (SPEC "Clients"): the third-party
clients the user allowed on the consent page, each with a button that withdraws
the consent and ends that client's refresh families and access tokens for the user.

:func:`connected_apps` gives the section's rows to the account page (the
template is ``_connected_apps.html``, included by ``account.html``);
``POST /account/apps/{client_id}/revoke`` is the button (CSRF: the session's
token, checked by the middleware).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from keyturn.clock import to_datetime
from keyturn.runtime import Keyturn
from keyturn.web.dependencies import OptionalPrincipal, client_ip, get_keyturn, session_secret
from keyturn.web.pages.common import ACCOUNT, redirect_to, redirect_to_login

router = APIRouter(include_in_schema=False)


async def connected_apps(keyturn: Keyturn, user_id: str) -> list[dict[str, Any]]:
    """The user's consent grants as rows for the template, oldest first.

    Raises:
        StoreUnavailable: a store cannot be reached.
    """
    rows = []
    for grant in await keyturn.authorization.consents.list(user_id):
        client = await keyturn.flow_client(grant.client_id)
        rows.append(
            {
                "client_id": grant.client_id,
                "name": (client.name if client is not None else "") or grant.client_id,
                "scopes": sorted(grant.scopes),
                "granted": to_datetime(grant.granted_at).strftime("%Y-%m-%d %H:%M UTC"),
            }
        )
    return rows


@router.post("/account/apps/{client_id}/revoke")
async def revoke_app(request: Request, client_id: str, principal: OptionalPrincipal) -> Response:
    """Withdraw the consent given to ``client_id`` and end its tokens for the user."""
    if principal is None or principal.via != "session" or session_secret(request) is None:
        return redirect_to_login(request)
    keyturn = get_keyturn(request)
    await keyturn.authorization.consents.revoke(principal.subject, client_id)
    ended = await keyturn.refresh_families.end_for_client(principal.subject, client_id)
    keyturn.audit.record(
        "consent_revoked",
        user_id=principal.subject,
        ip=client_ip(request),
        client_id=client_id,
        families_ended=len(ended),
    )
    return redirect_to(request, ACCOUNT)
