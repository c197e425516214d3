"""Pushed authorization requests (RFC 9126): ``POST /oauth/par``.

A client pushes its authorization request over an authenticated back channel
and sends the browser to ``/oauth/authorize?client_id=...&request_uri=...``
instead, so the parameters are not exposed to, or altered in, the browser.

* The pushed parameters are validated at push time exactly as at
  ``/oauth/authorize`` and stored in canonical form
  (:meth:`keyturn.oauth.request.AuthorizationRequest.to_params`); they are
  validated again when used (RFC 9126 section 4).
* ``request_uri`` is ``urn:ietf:params:oauth:request_uri:`` plus 256 random
  bits (section 2.2); the store keeps only its SHA-256.
* It expires after ``ttl`` seconds (60 by default), is bound to the pushing
  client, and is single use (section 4): :meth:`PushedRequests.load` may be
  called again while the user signs in (a reload is allowed), and
  :meth:`PushedRequests.consume` ends it when the authorization response is
  sent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from keyturn.clock import Clock
from keyturn.errors import ConfigurationError, InvalidRequest, InvalidRequestUri
from keyturn.oauth.request import (
    AuthorizationClient,
    Params,
    collect_params,
    validate_authorization_request,
)
from keyturn.oauth.store import PushedRequest, PushedRequestStore

__all__ = ["DEFAULT_PAR_TTL", "REQUEST_URI_PREFIX", "PushedAuthorization", "PushedRequests"]

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
#: Seconds a request_uri stays usable by default.
DEFAULT_PAR_TTL = 60
#: RFC 9126 section 2.2 suggests "between 5 and 600 seconds".
_MAX_PAR_TTL = 600
_REQUEST_URI = re.compile(re.escape(REQUEST_URI_PREFIX) + r"[A-Za-z0-9_-]{43}")


def hash_request_uri(request_uri: str) -> str:
    """The stored key of a request_uri: SHA-256, hex."""
    return hashlib.sha256(request_uri.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class PushedAuthorization:
    """The answer to a push: 201 ``{"request_uri", "expires_in"}``."""

    request_uri: str = dataclasses.field(repr=False)
    expires_in: int

    def to_dict(self) -> dict[str, str | int]:
        """The JSON body of the 201 response (RFC 9126 section 2.2)."""
        return {"request_uri": self.request_uri, "expires_in": self.expires_in}


class PushedRequests:
    """Push, load and consume PAR requests over a :class:`PushedRequestStore`.

    Args:
        store: where pushed requests live.
        clock: the time source for expiry.
        ttl: seconds a ``request_uri`` is valid, 1 to 600 (default 60).

    Raises:
        ConfigurationError: ``ttl`` is out of range.
    """

    def __init__(
        self, store: PushedRequestStore, clock: Clock, *, ttl: int = DEFAULT_PAR_TTL
    ) -> None:
        if not 1 <= ttl <= _MAX_PAR_TTL:
            raise ConfigurationError(f"the PAR request_uri TTL must be 1 to {_MAX_PAR_TTL} s")
        self.store = store
        self.clock = clock
        self.ttl = ttl

    async def push(self, client: AuthorizationClient, params: Params) -> PushedAuthorization:
        """Validate and store an authorization request from ``client``, which
        the caller has already authenticated.

        Raises:
            InvalidRequest: the request has a ``request_uri`` (section 2.1), or a
                ``client_id`` other than the authenticated client's.
            UnsafeAuthorizationRequest: the redirect URI is missing or not
                registered (answer 400 JSON; there is no redirect at PAR).
            RedirectedAuthorizationError: any other invalid parameter (answer
                400 JSON with its ``code``; do not redirect).
            StoreUnavailable: the store cannot be reached.
        """
        pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
        values, repeated = collect_params(pairs)
        if "request_uri" in values or "request_uri" in repeated:
            raise InvalidRequest("a pushed request cannot contain request_uri")
        if values.get("client_id", client.id) != client.id or "client_id" in repeated:
            raise InvalidRequest("client_id does not match the authenticated client")
        if "client_id" not in values:
            pairs.append(("client_id", client.id))
        request = validate_authorization_request(pairs, client)
        request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
        now = self.clock.now()
        await self.store.add(
            PushedRequest(
                request_uri_hash=hash_request_uri(request_uri),
                client_id=client.id,
                params=request.to_params(),
                created_at=now,
                expires_at=now + self.ttl,
            )
        )
        return PushedAuthorization(request_uri, self.ttl)

    async def load(self, request_uri: str, client_id: str) -> dict[str, str]:
        """The pushed parameters behind ``request_uri``, for ``client_id``, to
        validate again with :func:`keyturn.oauth.request.validate_authorization_request`.
        Parameters sent beside ``request_uri`` are ignored (section 4).

        Raises:
            InvalidRequestUri: malformed, unknown, expired, already used, or
                pushed by another client. Never redirect this one.
            StoreUnavailable: the store cannot be reached.
        """
        return dict((await self._usable(request_uri, client_id)).params)

    async def consume(self, request_uri: str, client_id: str) -> None:
        """Use ``request_uri`` up, once: call when the authorization response
        (code or error) is sent.

        Raises:
            InvalidRequestUri: as :meth:`load`, or another call consumed it first.
            StoreUnavailable: the store cannot be reached.
        """
        pushed = await self._usable(request_uri, client_id)
        if not await self.store.consume(pushed.request_uri_hash, self.clock.now()):
            raise InvalidRequestUri()

    async def purge(self) -> int:
        """Delete expired requests; return how many.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        return await self.store.purge(self.clock.now())

    async def _usable(self, request_uri: str, client_id: str) -> PushedRequest:
        if not isinstance(request_uri, str) or _REQUEST_URI.fullmatch(request_uri) is None:
            raise InvalidRequestUri()
        pushed = await self.store.get(hash_request_uri(request_uri))
        if pushed is None or pushed.used_at is not None or pushed.client_id != client_id:
            raise InvalidRequestUri()
        if self.clock.now() >= pushed.expires_at:
            raise InvalidRequestUri()
        return pushed
