"""OpenID Provider metadata (OIDC Discovery 1.0 section 3), framework-free.

:func:`openid_configuration` extends the RFC 8414 document with every member
Discovery marks REQUIRED (``issuer``, ``authorization_endpoint``,
``token_endpoint``, ``jwks_uri``, ``response_types_supported``,
``subject_types_supported``, ``id_token_signing_alg_values_supported``) and the
ones SPEC lists (``userinfo_endpoint``, ``end_session_endpoint``,
``pushed_authorization_request_endpoint``, ``code_challenge_methods_supported``,
``authorization_response_iss_parameter_supported``, the back-channel logout
flags, ``token_endpoint_auth_methods_supported``, ``scopes_supported``,
``claims_supported``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["CLAIMS_SUPPORTED", "ID_TOKEN_ALGS", "openid_configuration"]

#: What ID tokens may be signed with (RS256 first: OIDC Core 15.1 mandates it).
ID_TOKEN_ALGS: tuple[str, ...] = ("RS256", "ES256", "EdDSA")
#: Every claim keyturn can put in an ID token or the userinfo answer.
CLAIMS_SUPPORTED: tuple[str, ...] = (
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "azp",
    "sid",
    "amr",
    "acr",
    "email",
    "email_verified",
)


def openid_configuration(
    oauth_metadata: Mapping[str, Any],
    *,
    base: str,
    scopes: Sequence[str],
) -> dict[str, Any]:
    """The ``/.well-known/openid-configuration`` document: ``oauth_metadata``
    (RFC 8414, from the same issuer) plus the OpenID Provider members; endpoint
    URLs under ``base``. The grant types are the RFC 8414 document's."""
    document = dict(oauth_metadata)
    document.update(
        {
            "authorization_endpoint": f"{base}/oauth/authorize",
            "userinfo_endpoint": f"{base}/oauth/userinfo",
            "end_session_endpoint": f"{base}/oauth/logout",
            "pushed_authorization_request_endpoint": f"{base}/oauth/par",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": list(ID_TOKEN_ALGS),
            "userinfo_signing_alg_values_supported": ["none"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
            "frontchannel_logout_supported": False,
            "scopes_supported": list(dict.fromkeys(["openid", *scopes])),
            "claims_supported": list(CLAIMS_SUPPORTED),
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "require_pushed_authorization_requests": False,
            "prompt_values_supported": ["none", "login", "consent"],
        }
    )
    return document
