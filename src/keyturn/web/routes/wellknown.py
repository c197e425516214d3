"""Discovery: ``/.well-known/jwks.json`` and the RFC 8414 metadata documents.

Every URL is built from ``settings.public_issuer``, the same string our tokens
carry in ``iss``, so a downstream service that knows only the issuer finds the
keys that verify its tokens (see :mod:`keyturn.tokens.remote`). Both documents are
public and change rarely: they may be cached for five minutes. A verifier that
meets an unknown ``kid`` before then refetches the JWKS (rotation signs at once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from keyturn.web.dependencies import base_path, get_keyturn
from keyturn.web.routes.oauth import enabled_grant_types
from keyturn.web.routes.openapi_docs import answer, error_responses

_JWKS = {
    "type": "object",
    "properties": {"keys": {"type": "array", "items": {"type": "object"}}},
    "required": ["keys"],
}
_METADATA = {
    "type": "object",
    "properties": {"issuer": {"type": "string"}, "token_endpoint": {"type": "string"}},
    "required": ["issuer", "token_endpoint", "jwks_uri"],
}

router = APIRouter(prefix="/.well-known", tags=["discovery"])

#: Cache lifetime of the JWKS and metadata documents, in seconds.
DISCOVERY_MAX_AGE: Final = 300
_CACHE_HEADERS: Final = {"Cache-Control": f"public, max-age={DISCOVERY_MAX_AGE}"}

JWKS_PATH: Final = "/.well-known/jwks.json"
METADATA_PATH: Final = "/.well-known/oauth-authorization-server"


def authorization_server_metadata(
    issuer: str,
    *,
    endpoints: str | None = None,
    grant_types: Sequence[str] = ("refresh_token",),
) -> dict[str, Any]:
    """RFC 8414 metadata for ``issuer`` (no trailing slash).

    ``endpoints`` is the URL the endpoints live under (default: ``issuer``);
    ``grant_types`` what ``/oauth/token`` answers
    (:func:`keyturn.web.routes.oauth.enabled_grant_types`: the password grant
    only with ``--password-grant``). With ``authorization_code`` among them the
    document also names the authorization endpoint and PAR (RFC 9126), the one
    response type ``code``, PKCE ``S256`` only (RFC 7636) and the ``iss``
    authorization response parameter (RFC 9207).
    """
    base = issuer if endpoints is None else endpoints
    client_auth = ["client_secret_basic", "client_secret_post", "none"]
    metadata: dict[str, Any] = {
        "issuer": issuer,
        "token_endpoint": f"{base}/oauth/token",
        "jwks_uri": f"{base}{JWKS_PATH}",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "grant_types_supported": list(grant_types),
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": client_auth,
        "revocation_endpoint_auth_methods_supported": client_auth,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
    }
    if "authorization_code" in grant_types:
        metadata.update(
            {
                "authorization_endpoint": f"{base}/oauth/authorize",
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": True,
                "pushed_authorization_request_endpoint": f"{base}/oauth/par",
                "require_pushed_authorization_requests": False,
            }
        )
    return metadata


@router.get("/jwks.json", responses=error_responses(_200=answer("The public keys.", _JWKS)))
async def jwks(request: Request) -> JSONResponse:
    """The public signing keys, each with ``kid``, ``alg`` and ``use: "sig"``."""
    manager = get_keyturn(request).keys
    await manager.reload_if_stale()  # a `keyturn key rotate` elsewhere shows up here
    return JSONResponse(manager.jwks(), headers=_CACHE_HEADERS)


@router.get(
    "/oauth-authorization-server",
    responses=error_responses(_200=answer("RFC 8414 metadata.", _METADATA)),
)
async def oauth_metadata(request: Request) -> JSONResponse:
    """RFC 8414 authorization server metadata."""
    keyturn = get_keyturn(request)
    settings = keyturn.settings
    issuer = settings.public_issuer
    document = authorization_server_metadata(
        issuer,
        endpoints=endpoint_base(issuer, base_path(request)),
        grant_types=enabled_grant_types(settings),
    )
    # --- DPoP (wave 2, #16): RFC 9449 section 5.1 ---
    document["dpop_signing_alg_values_supported"] = list(keyturn.dpop.algorithms)
    return JSONResponse(document, headers=_CACHE_HEADERS)


def endpoint_base(issuer: str, base: str) -> str:
    """The URL keyturn's endpoints live under: the issuer, plus the mount prefix
    when keyturn is installed under one and the issuer does not already end
    with it (set ``issuer`` to the prefixed URL, ``https://app.example/id``,
    so that a verifier knowing only the issuer finds the metadata)."""
    if not base or issuer.endswith(base):
        return issuer
    return issuer + base


@router.get(
    "/openid-configuration",
    responses=error_responses(_200=answer("OpenID Provider metadata.", _METADATA)),
)
async def openid_configuration(request: Request) -> JSONResponse:
    """OpenID Provider metadata (OIDC Discovery 1.0): the RFC 8414 document plus
    the authorization, userinfo and end-session endpoints, ID token algorithms,
    subject types and the back-channel logout flags."""
    from keyturn.oidc.discovery import openid_configuration as provider_metadata

    keyturn = get_keyturn(request)
    settings = keyturn.settings
    issuer = settings.public_issuer
    base = endpoint_base(issuer, base_path(request))
    document = provider_metadata(
        authorization_server_metadata(
            issuer, endpoints=base, grant_types=enabled_grant_types(settings)
        ),
        base=base,
        scopes=settings.default_scopes,
    )
    document["dpop_signing_alg_values_supported"] = list(keyturn.dpop.algorithms)
    return JSONResponse(document, headers=_CACHE_HEADERS)


__all__ = ["DISCOVERY_MAX_AGE", "authorization_server_metadata", "router"]
