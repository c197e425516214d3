"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0), framework-free.

A relying party sends the browser to ``/oauth/logout`` with ``id_token_hint``
(an ID token keyturn issued), ``client_id``, ``post_logout_redirect_uri`` and
``state``. :func:`read_id_token_hint` checks the hint: signed by a key of our
ring with the algorithm that key pins, ``typ: JWT`` (an access token is not a
hint), our ``iss``. An expired hint is still a hint (section 2: the RP may send
one that has expired). :func:`check_logout_request` then decides where the
browser may go afterwards: only to a ``post_logout_redirect_uri`` registered for
the client, compared as an exact string, and only when the client is known (from
the hint's ``aud`` or ``client_id``, which must agree). ``state`` is echoed on
that redirect and nowhere else.

Whether the keyturn session ends at once or after the user confirms is the HTTP
layer's choice (:mod:`keyturn.web.pages.logout`): at once with a valid hint for
the signed-in user, after a confirmation page (CSRF-protected) otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

from joserfc import jws
from joserfc.errors import JoseError

from keyturn.errors import ConfigurationError, InvalidRequest, InvalidToken
from keyturn.keys.ring import KeyRing
from keyturn.oidc.id_token import ID_TOKEN_TYPE, registry_for


class LogoutClient(Protocol):
    """The client record's fields logout reads
    (:class:`keyturn.stores.records.Client` has them)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def post_logout_redirect_uris(self) -> tuple[str, ...]: ...


__all__ = [
    "IdTokenHint",
    "LogoutClient",
    "LogoutRequest",
    "check_logout_request",
    "read_id_token_hint",
]

_MAX_HINT = 16_384


@dataclass(frozen=True)
class IdTokenHint:
    """What a verified ``id_token_hint`` says: who, for which client, in which
    browser session (``sid``; None if the token had none)."""

    subject: str
    client_id: str
    session_handle: str | None


@dataclass(frozen=True)
class LogoutRequest:
    """A checked logout request. ``redirect_uri`` (with ``state`` already in its
    query) is None when the browser stays at keyturn afterwards."""

    hint: IdTokenHint | None
    client: LogoutClient | None
    redirect_uri: str | None
    post_logout_redirect_uri: str | None
    state: str | None

    def form_fields(self) -> list[tuple[str, str]]:
        """The request again, for the confirmation form (the hint is dropped:
        confirming replaces it)."""
        fields = []
        if self.client is not None:
            fields.append(("client_id", self.client.id))
        if self.post_logout_redirect_uri is not None:
            fields.append(("post_logout_redirect_uri", self.post_logout_redirect_uri))
        if self.state is not None:
            fields.append(("state", self.state))
        return fields


def read_id_token_hint(token: str, ring: KeyRing, *, issuer: str) -> IdTokenHint:
    """Verify an ``id_token_hint``; expiry is not checked (section 2).

    Raises:
        InvalidToken: not a compact JWS, unknown ``kid``, another algorithm than
            the key's, a bad signature, not ``typ: JWT``, another issuer, or
            missing ``sub`` / ``aud``.
    """
    if not isinstance(token, str) or not token or len(token) > _MAX_HINT or not token.isascii():
        raise InvalidToken("malformed")
    try:
        header = dict(jws.extract_compact(token.encode()).headers())
        kid, alg = header.get("kid"), header.get("alg")
        if not isinstance(kid, str) or not isinstance(alg, str):
            raise InvalidToken("malformed")
        try:
            verification = ring.verification_key(kid)
        except KeyError:
            raise InvalidToken("unknown_kid") from None
        if verification.alg != alg or header.get("typ") != ID_TOKEN_TYPE:
            raise InvalidToken("malformed")
        verified = jws.deserialize_compact(token, verification.key, registry=registry_for(alg))
        claims: Any = json.loads(verified.payload)
    except (JoseError, ValueError, UnicodeError, ConfigurationError):
        raise InvalidToken("malformed") from None
    if not isinstance(claims, dict) or claims.get("iss") != issuer:
        raise InvalidToken("issuer")
    subject, audience, sid = claims.get("sub"), claims.get("aud"), claims.get("sid")
    if isinstance(audience, list) and len(audience) == 1:
        audience = audience[0]
    if not isinstance(subject, str) or not isinstance(audience, str):
        raise InvalidToken("malformed")
    return IdTokenHint(subject, audience, sid if isinstance(sid, str) else None)


async def check_logout_request(
    params: Mapping[str, str],
    *,
    ring: KeyRing,
    issuer: str,
    lookup_client: Callable[[str], Awaitable[LogoutClient | None]],
) -> LogoutRequest:
    """Check the parameters of a logout request. An invalid hint is dropped
    (the user is then asked to confirm), never an error.

    Raises:
        InvalidRequest: ``client_id`` disagrees with the hint's audience, a
            ``post_logout_redirect_uri`` without a known client, or one that is
            not registered for that client (no redirect is made for these).
        StoreUnavailable: the client store cannot be reached.
    """
    hint = None
    raw_hint = params.get("id_token_hint")
    if raw_hint:
        try:
            hint = read_id_token_hint(raw_hint, ring, issuer=issuer)
        except InvalidToken:
            hint = None
    client_id = params.get("client_id") or None
    if hint is not None and client_id is not None and client_id != hint.client_id:
        raise InvalidRequest("client_id does not match the id_token_hint")
    wanted = hint.client_id if hint is not None else client_id
    client = await lookup_client(wanted) if wanted else None
    target = params.get("post_logout_redirect_uri") or None
    state = params.get("state") or None
    redirect = None
    if target is not None:
        if client is None:
            raise InvalidRequest("post_logout_redirect_uri needs a known client")
        if target not in client.post_logout_redirect_uris:
            raise InvalidRequest("post_logout_redirect_uri is not registered for this client")
        redirect = _with_state(target, state)
    return LogoutRequest(hint, client, redirect, target, state if target is not None else None)


def _with_state(uri: str, state: str | None) -> str:
    if state is None:
        return uri
    parts = urlsplit(uri)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=query + urlencode({"state": state})))
