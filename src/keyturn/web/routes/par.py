"""``POST /oauth/par``: pushed authorization requests (RFC 9126).

The client authenticates as at the token endpoint (``client_secret_basic``,
``client_secret_post``, or a public client's bare ``client_id``) and pushes the
parameters of an authorization request; keyturn validates them exactly as
``/oauth/authorize`` would and answers 201 ``{"request_uri", "expires_in"}``.
Every error is an RFC 6749 JSON body (400, or 401 ``invalid_client``): there
is no redirect at this endpoint. ``Cache-Control: no-store`` throughout.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from keyturn.errors import InvalidClient, KeyturnError
from keyturn.web.dependencies import get_keyturn
from keyturn.web.errors import OAUTH_NO_STORE, oauth_error_response
from keyturn.web.routes.oauth_forms import authenticate_client, read_pairs
from keyturn.web.routes.openapi_docs import answer, form_request, oauth_responses

router = APIRouter(prefix="/oauth", tags=["oauth"])

_PUSHED = {
    "type": "object",
    "required": ["request_uri", "expires_in"],
    "properties": {"request_uri": {"type": "string"}, "expires_in": {"type": "integer"}},
}
#: Client authentication fields: read for authentication, never pushed.
_CLIENT_AUTH = ("client_secret",)


@router.post(
    "/par",
    status_code=201,
    openapi_extra=form_request(
        {
            "response_type": {"enum": ["code"]},
            "client_id": {},
            "client_secret": {},
            "redirect_uri": {},
            "scope": {},
            "state": {},
            "code_challenge": {},
            "code_challenge_method": {"enum": ["S256"]},
            "nonce": {},
            "prompt": {},
            "max_age": {},
            "login_hint": {},
        },
        required=("response_type", "redirect_uri", "code_challenge"),
    ),
    responses=oauth_responses(
        400, 401, _201=answer("The request_uri to send the browser with.", _PUSHED)
    ),
)
async def push(request: Request) -> Response:
    """Store a validated authorization request; 201 ``{"request_uri", "expires_in"}``."""
    try:
        pairs = await read_pairs(request)
        auth: dict[str, str] = {}
        for name, value in pairs:
            if name in ("client_id", "client_secret") and value:
                if name in auth:
                    raise InvalidClient()
                auth[name] = value
        client_id = await authenticate_client(request, auth)
        if client_id is None:
            raise InvalidClient()
        keyturn = get_keyturn(request)
        client = await keyturn.flow_client(client_id)
        if client is None:
            raise InvalidClient()
        pushed = [(name, value) for name, value in pairs if name not in _CLIENT_AUTH]
        result = await keyturn.authorization.pushed.push(client, pushed)
    except KeyturnError as exc:
        return oauth_error_response(exc)
    return JSONResponse(result.to_dict(), status_code=201, headers=dict(OAUTH_NO_STORE))


__all__ = ["router"]
