"""What a client may be registered with (SPEC "Clients"), checked once, at
registration, with one-line errors for the operator.

* Redirect URIs and post-logout redirect URIs follow
  :func:`keyturn.oauth.redirects.validate_redirect_uri`: ``https``, or ``http``
  on ``127.0.0.1`` / ``[::1]`` only; no fragment, no wildcard, no userinfo.
* Grant types are the four keyturn knows; ``client_credentials`` needs a
  confidential client (a public client has nothing to authenticate with, RFC
  6749 section 4.4). None given: :data:`DEFAULT_GRANT_TYPES`.
* The back-channel logout URI (OpenID Connect Back-Channel Logout 1.0 section
  2.2) is absolute ``https`` (``http`` on loopback for local work), without a
  fragment.
* The ID-token algorithm is one of :data:`ID_TOKEN_ALGS`, or None: the
  algorithm of the signing key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from keyturn.errors import InvalidClientMetadata, InvalidRedirectUri
from keyturn.oauth.redirects import validate_redirect_uri, validate_redirect_uris

__all__ = [
    "DEFAULT_GRANT_TYPES",
    "GRANT_TYPES",
    "ID_TOKEN_ALGS",
    "ClientMetadata",
    "check_metadata",
]

#: Every grant a client may be registered with, in the order the CLI lists them.
GRANT_TYPES: tuple[str, ...] = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "password",
)
#: A new client's grants when the operator names none (SPEC "Clients").
DEFAULT_GRANT_TYPES: tuple[str, ...] = ("authorization_code", "refresh_token")
#: The algorithms an ID token may be signed with (SPEC "Clients").
ID_TOKEN_ALGS: tuple[str, ...] = ("RS256", "ES256", "EdDSA")


@dataclass(frozen=True)
class ClientMetadata:
    """The checked registration values of one client (see :func:`check_metadata`)."""

    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = DEFAULT_GRANT_TYPES
    backchannel_logout_uri: str | None = None
    id_token_alg: str | None = None


def check_metadata(
    *,
    confidential: bool,
    redirect_uris: Iterable[str] = (),
    post_logout_redirect_uris: Iterable[str] = (),
    grant_types: Iterable[str] | None = None,
    backchannel_logout_uri: str | None = None,
    id_token_alg: str | None = None,
) -> ClientMetadata:
    """Check what an operator registers a client with; duplicates are dropped,
    order is kept.

    Raises:
        InvalidRedirectUri: a redirect or post-logout redirect URI breaks a rule.
        InvalidClientMetadata: an unknown grant type or algorithm, no grant at
            all, ``client_credentials`` for a public client, or a bad
            back-channel logout URI.
    """
    grants = DEFAULT_GRANT_TYPES if grant_types is None else tuple(dict.fromkeys(grant_types))
    for grant in grants:
        if grant not in GRANT_TYPES:
            raise InvalidClientMetadata(
                f"unknown grant type {grant!r}; use one of {', '.join(GRANT_TYPES)}"
            )
    if not grants:
        raise InvalidClientMetadata("a client needs at least one grant type")
    if "client_credentials" in grants and not confidential:
        raise InvalidClientMetadata(
            "the client_credentials grant needs a confidential client (--confidential)"
        )
    if id_token_alg is not None and id_token_alg not in ID_TOKEN_ALGS:
        raise InvalidClientMetadata(
            f"unknown ID-token algorithm {id_token_alg!r}; use one of {', '.join(ID_TOKEN_ALGS)}"
        )
    return ClientMetadata(
        redirect_uris=validate_redirect_uris(redirect_uris),
        post_logout_redirect_uris=_post_logout_uris(post_logout_redirect_uris),
        grant_types=grants,
        backchannel_logout_uri=_backchannel_uri(backchannel_logout_uri),
        id_token_alg=id_token_alg,
    )


def _post_logout_uris(uris: Iterable[str]) -> tuple[str, ...]:
    checked: dict[str, None] = {}
    for uri in uris:
        try:
            checked[validate_redirect_uri(uri)] = None
        except InvalidRedirectUri as exc:
            detail = exc.detail.replace("redirect URI", "post-logout URI")
            raise InvalidRedirectUri(detail) from None
    return tuple(checked)


def _backchannel_uri(uri: str | None) -> str | None:
    """The same shape rules as a redirect URI (absolute, ``https`` off loopback, no
    fragment or wildcard), with the error in this field's name."""
    if uri is None:
        return None
    try:
        return validate_redirect_uri(uri)
    except InvalidRedirectUri as exc:
        raise InvalidClientMetadata(
            exc.detail.replace("redirect URI", "back-channel logout URI")
        ) from None
