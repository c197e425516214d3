"""The records the stores hold: frozen dataclasses, free of persistence machinery.

Each is what one store keeps and hands back unchanged (the Protocols are in
:mod:`keyturn.stores.protocols`). Times are POSIX seconds; anything that grants
access is held only as a hash computed by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "WAVE1_GRANT_TYPES",
    "Client",
    "RefreshFamily",
    "RefreshToken",
    "Revocation",
    "RevocationKind",
    "Session",
    "User",
    "normalize_email_key",
]

#: What a client registered before clients had grant types (migration 0009)
#: may use: what every client could in wave 1.
WAVE1_GRANT_TYPES: tuple[str, ...] = ("password", "refresh_token")


def normalize_email_key(email: str) -> str:
    """The key that makes e-mail addresses unique case-insensitively."""
    return email.strip().casefold()


@dataclass(frozen=True, slots=True)
class User:
    """An account. ``email`` is shown as entered (validated, trimmed);
    ``email_key`` is its case-folded form and is unique."""

    id: str
    email: str
    password_hash: str
    created_at: float
    roles: tuple[str, ...] = ()
    disabled: bool = False
    email_key: str = field(default="")

    def __post_init__(self) -> None:
        if not self.email_key:
            object.__setattr__(self, "email_key", normalize_email_key(self.email))


@dataclass(frozen=True, slots=True)
class Session:
    """One browser sign-in, as stored.

    The secret session ID never reaches the store: ``id_hash`` (SHA-256 hex of
    it) is the key, so a dump of the store grants nothing. ``handle`` is a
    separate public random id for listing and revoking the sign-in
    (``GET /auth/sessions``, ``DELETE /auth/sessions/{id}``); it stays the same
    when the secret rotates.
    """

    id_hash: str
    handle: str
    user_id: str
    created_at: float
    last_seen_at: float
    idle_timeout: int
    expires_at: float
    auth_time: float
    remember: bool = False
    ip: str | None = None
    user_agent: str | None = None
    #: How the user proved who they are (RFC 8176 ``amr``: ``pwd``, ``otp``,
    #: ``hwk``/``swk``, ``mfa``); kept when the secret rotates.
    amr: tuple[str, ...] = ("pwd",)

    @property
    def ends_at(self) -> float:
        """When the session ends if nothing happens: its idle timeout or its
        absolute lifetime, whichever comes first (the one expiry formula)."""
        return min(self.expires_at, self.last_seen_at + self.idle_timeout)

    def is_expired(self, now: float) -> bool:
        """True once the absolute lifetime or the idle timeout has run out at ``now``."""
        return now >= self.ends_at


@dataclass(frozen=True, slots=True)
class RefreshFamily:
    """One token sign-in: every refresh token rotated from one password grant.

    ``id`` is the public handle (the ``sid`` of the family's access tokens and the
    ``id`` of its ``"kind": "token"`` row in ``GET /auth/sessions``). The family
    ends at ``expires_at`` however often it is refreshed (the absolute cap), or
    when ``revoked_at`` is set.

    ``session_id`` is the public handle of the browser session the family came
    from (the authorization code flow), None for the password grant: ending that
    session ends the family.

    ``dpop_jkt`` is the RFC 7638 thumbprint of the DPoP key a public client's
    family is bound to (RFC 9449 section 5): every refresh must carry a proof
    signed by that key. None for an unbound family.
    """

    id: str
    user_id: str
    client_id: str | None
    scope: str
    created_at: float
    last_used_at: float
    expires_at: float
    ip: str | None = None
    user_agent: str | None = None
    revoked_at: float | None = None
    session_id: str | None = None
    dpop_jkt: str | None = None

    def is_live(self, now: float) -> bool:
        """True while neither revoked nor past the absolute cap at ``now``."""
        return self.revoked_at is None and now < self.expires_at

    def ends_at(self, idle_timeout: float) -> float:
        """When the family ends if unused: ``idle_timeout`` (the refresh token's
        lifetime) after its last use, or its absolute cap, whichever comes first."""
        return min(self.expires_at, self.last_used_at + idle_timeout)


@dataclass(frozen=True, slots=True)
class RefreshToken:
    """One refresh token of a family, as stored: only its SHA-256 (hex).

    ``used_at`` is set when it is rotated; until ``grace_until`` the successor
    response it produced is kept in ``grace_payload``, encrypted by the caller
    (the store never sees it in the clear).
    """

    token_hash: str
    family_id: str
    issued_at: float
    expires_at: float
    used_at: float | None = None
    grace_until: float | None = None
    grace_payload: bytes | None = field(default=None, repr=False)


RevocationKind = Literal["jti", "sid", "user"]


@dataclass(frozen=True, slots=True)
class Revocation:
    """One entry of the revocation list.

    ``kind`` says what ``value`` names: an access token's ``jti``, a ``sid``
    (refresh family or browser session handle) or a user id whose tokens issued
    before ``created_at`` are cut off. ``expires_at`` is when the entry can be
    forgotten: no token it could refuse is alive after it. ``seq`` is assigned
    by the store, increasing, for incremental sync (0 before it is stored).
    """

    kind: RevocationKind
    value: str
    created_at: float
    expires_at: float
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Client:
    """An OAuth client (SPEC "Clients"). ``secret_hash`` (SHA-256 hex of a
    256-bit random secret) is set for confidential clients only.

    Two fields are None for a client registered before they existed, and then
    mean "as in wave 1", so such a client keeps working unchanged:

    * ``registered_scopes``: the scope values the client may ask for. None
      (before migration 0007): the server's ``default_scopes`` apply, as to
      keyturn's own first-party use (:meth:`keyturn.oauth.clients.Clients.allowed_scopes`).
    * ``registered_grants``: the grant types it may use. None (before migration
      0009): :data:`WAVE1_GRANT_TYPES`, the password and refresh grants.

    :attr:`allowed_scopes` and :attr:`grant_types` read them with those
    fallbacks, so the record is an
    :class:`~keyturn.oauth.request.AuthorizationClient` as it is.

    ``redirect_uris`` and ``post_logout_redirect_uris`` are stored exactly as
    registered (validated by :mod:`keyturn.oauth.redirects`); ``first_party``
    clients skip the consent screen; ``backchannel_logout_uri`` and
    ``id_token_alg`` (None: the algorithm of the signing key) are for OpenID
    Connect.
    """

    id: str
    name: str
    confidential: bool
    created_at: float
    secret_hash: str | None = field(default=None, repr=False)
    registered_scopes: tuple[str, ...] | None = None
    first_party: bool = False
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    registered_grants: tuple[str, ...] | None = None
    backchannel_logout_uri: str | None = None
    id_token_alg: str | None = None

    @property
    def public(self) -> bool:
        """Whether the client has no secret (SPA, mobile or CLI app)."""
        return not self.confidential

    @property
    def allowed_scopes(self) -> tuple[str, ...]:
        """The registered scope allowlist; empty for a client from before
        per-client scopes (the server's default scopes apply to it: ask
        :meth:`keyturn.oauth.clients.Clients.allowed_scopes`, which knows them)."""
        return () if self.registered_scopes is None else self.registered_scopes

    @property
    def grant_types(self) -> tuple[str, ...]:
        """The grant types the client may use (wave-1 clients: password and refresh)."""
        return WAVE1_GRANT_TYPES if self.registered_grants is None else self.registered_grants
