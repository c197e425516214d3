"""Records and store Protocols of the authorization code flow.

Three stores, one Protocol each, with the memory reference in
:mod:`keyturn.oauth.memory` (SQL comes with the integration):

* :class:`CodeStore`: authorization codes, keyed by the SHA-256 of the code;
* :class:`PushedRequestStore`: PAR requests, keyed by the SHA-256 of the
  ``request_uri``;
* :class:`ConsentStore`: what each user granted each client.

The single-use rules are compare-and-set operations defined here, so that every
backend can do them atomically without a lock held across a round trip: SQL as
``UPDATE ... SET used_at = :now WHERE key = :key AND used_at IS NULL`` (one row
affected means this caller won), Redis as a Lua script or ``SET ... NX`` on a
"used" key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "AuthorizationCode",
    "CodeStore",
    "ConsentGrant",
    "ConsentStore",
    "PushedRequest",
    "PushedRequestStore",
]


@dataclass(frozen=True)
class AuthorizationCode:
    """One issued authorization code, as stored: never the code itself.

    ``code_hash`` is the SHA-256 hex of the code. The rest is what the code is
    bound to (SPEC "OAuth 2.1 authorization code flow"): the client, the exact
    redirect URI, the PKCE challenge, the OIDC nonce, the granted scopes and
    the browser session it came from (``session_id`` is the session's public
    handle, never its secret), with the user's ``auth_time`` and ``amr`` for the
    ID token.

    ``grant_id`` is a random id fixed at issuance: the caller can use it as (or
    link it to) the refresh family, so a replay always names what to revoke.
    ``used_at`` is set by the first redemption; ``family_id`` is the marker the
    caller records after issuing tokens from the code.
    """

    code_hash: str = field(repr=False)
    grant_id: str
    client_id: str
    user_id: str
    redirect_uri: str
    code_challenge: str
    scopes: tuple[str, ...]
    session_id: str
    auth_time: float
    created_at: float
    expires_at: float
    nonce: str | None = None
    amr: tuple[str, ...] = ()
    used_at: float | None = None
    family_id: str | None = None


class CodeStore(Protocol):
    """Authorization codes keyed by ``code_hash``."""

    async def add(self, code: AuthorizationCode) -> None:
        """Store a new code.

        Raises:
            ValueError: a code with this hash exists (never, with 256 random bits).
            StoreUnavailable: the backend cannot be reached.
        """
        ...

    async def get(self, code_hash: str) -> AuthorizationCode | None:
        """The code with this hash, used or not, or None."""
        ...

    async def consume(self, code_hash: str, now: float) -> bool:
        """Mark the code used at ``now`` if, and only if, it is not used yet.

        Atomic compare-and-set: of any number of concurrent calls for one code,
        exactly one returns True. SQL: ``UPDATE oauth_codes SET used_at = :now
        WHERE code_hash = :h AND used_at IS NULL`` and True when one row changed.
        False for an unknown or already used code.
        """
        ...

    async def set_family(self, code_hash: str, family_id: str) -> None:
        """Record what the first redemption issued (the refresh family id), so
        a replay can revoke it. Only on a used code; a no-op otherwise."""
        ...

    async def purge(self, expired_before: float) -> int:
        """Delete codes whose ``expires_at`` is before ``expired_before``;
        return how many. Used codes are kept until then so replays are seen."""
        ...


@dataclass(frozen=True)
class PushedRequest:
    """A pushed authorization request (RFC 9126), as stored.

    ``request_uri_hash`` is the SHA-256 hex of the ``request_uri`` handed to the
    client; ``params`` are the pushed parameters, already validated once;
    ``client_id`` is the authenticated client that pushed them, the only one
    that may use them (RFC 9126 section 4).
    """

    request_uri_hash: str = field(repr=False)
    client_id: str
    params: Mapping[str, str]
    created_at: float
    expires_at: float
    used_at: float | None = None


class PushedRequestStore(Protocol):
    """PAR requests keyed by ``request_uri_hash``."""

    async def add(self, request: PushedRequest) -> None:
        """Store a new pushed request.

        Raises:
            ValueError: one with this hash exists.
            StoreUnavailable: the backend cannot be reached.
        """
        ...

    async def get(self, request_uri_hash: str) -> PushedRequest | None:
        """The pushed request with this hash, used or not, or None."""
        ...

    async def consume(self, request_uri_hash: str, now: float) -> bool:
        """Mark it used at ``now`` if not used yet: an atomic compare-and-set,
        True for exactly one of any number of concurrent callers (as
        :meth:`CodeStore.consume`)."""
        ...

    async def purge(self, expired_before: float) -> int:
        """Delete requests that expired before ``expired_before``; return how many."""
        ...


@dataclass(frozen=True)
class ConsentGrant:
    """What ``user_id`` allowed ``client_id`` to have: the union of every scope
    set the user consented to, until revoked."""

    user_id: str
    client_id: str
    scopes: frozenset[str]
    granted_at: float
    updated_at: float


class ConsentStore(Protocol):
    """Consent grants keyed by ``(user_id, client_id)``."""

    async def get(self, user_id: str, client_id: str) -> ConsentGrant | None:
        """The grant of this user to this client, or None."""
        ...

    async def put(self, grant: ConsentGrant) -> None:
        """Create or replace the grant for ``(grant.user_id, grant.client_id)``."""
        ...

    async def delete(self, user_id: str, client_id: str) -> ConsentGrant | None:
        """Remove the grant and return it, or None if there was none."""
        ...

    async def list_for_user(self, user_id: str) -> list[ConsentGrant]:
        """Every grant of this user, oldest first ("Connected apps")."""
        ...

    async def delete_for_client(self, client_id: str) -> int:
        """Remove every grant to a client (the client is deleted); return how many."""
        ...
