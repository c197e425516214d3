"""Refresh families: issue, rotate, grace window, reuse detection (RFC 9700 §4.14).

(Over 300 lines: one class, the refresh family's life: rotation, the grace
window and reuse detection are one atomic story.)

One family per token sign-in. Its ``id`` is the public handle: the ``sid`` of its
access tokens and the ``id`` of its ``"kind": "token"`` row in
``GET /auth/sessions``. Refresh tokens are opaque: ``ktr_`` followed by 256
random bits (so one can never parse as a JWT), stored only as SHA-256.

Every refresh rotates: the presented token is marked used and a successor is
stored in one atomic step (:meth:`~keyturn.stores.protocols.RefreshStore.rotate`), so
two instances can never both rotate one token. The successor's lifetime slides
(``refresh_token_ttl`` from now) but never passes the family's absolute cap
(``refresh_max_age`` from sign-in).

Grace window: the response a rotation produced is kept, sealed with the key-
encryption key (AES-GCM, the token hash as associated data), for
``refresh_grace`` seconds. The same token presented again inside the window
gets that *same* response, so parallel tabs refreshing at once all continue.
After the window, a used token presented again is a replay: the whole family is
revoked (:class:`RefreshReuse`), and the caller revokes its access tokens too.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from keyturn.clock import Clock
from keyturn.errors import ConfigurationError, InvalidGrant
from keyturn.keys.encryption import KeyEncryptor
from keyturn.sessions.devices import clean_ip, clean_user_agent
from keyturn.settings import Settings
from keyturn.stores.protocols import RefreshStore
from keyturn.stores.records import RefreshFamily, RefreshToken
from keyturn.tokens.revocation import RevocationReplica

__all__ = [
    "REFRESH_TOKEN_PREFIX",
    "IssuedFamily",
    "RefreshFamilies",
    "RefreshReuse",
    "Rotation",
    "hash_refresh_token",
    "looks_like_refresh_token",
]

REFRESH_TOKEN_PREFIX: Final = "ktr_"  # noqa: S105 (a prefix, not a secret)
_TOKEN_FORMAT = re.compile(r"ktr_[A-Za-z0-9_-]{43}")
_HANDLE_BYTES = 12

#: Builds the response of a rotation from the family and the new refresh token:
#: a JSON-able dict (the token service puts the new access token in it).
ResponseFactory = Callable[[RefreshFamily, str], Awaitable[dict[str, Any]]]


def hash_refresh_token(token: str) -> str:
    """The store key of a refresh token: SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_refresh_token(token: object) -> bool:
    """Whether ``token`` has the form of one of our refresh tokens."""
    return isinstance(token, str) and _TOKEN_FORMAT.fullmatch(token) is not None


def _new_token() -> str:
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class IssuedFamily:
    """A new family and its first refresh token (shown to the client once), and
    the user's oldest families it pushed over ``max_refresh_families_per_user``
    (now revoked, their access tokens too)."""

    family: RefreshFamily
    refresh_token: str = field(repr=False)
    evicted: tuple[RefreshFamily, ...] = ()


@dataclass(frozen=True)
class Rotation:
    """The outcome of a refresh: the family, and the response to return.

    ``replayed`` is True when this was a repeat inside the grace window, and the
    response is the one an earlier call produced.
    """

    family: RefreshFamily
    response: dict[str, Any]
    replayed: bool


class RefreshReuse(InvalidGrant):
    """A used refresh token came back after its grace window: the family was
    revoked. Carries the family for the caller's audit and sid revocation."""

    def __init__(self, family: RefreshFamily) -> None:
        super().__init__()
        self.family = family


class RefreshFamilies:
    """Refresh families over a :class:`~keyturn.stores.protocols.RefreshStore`.

    Args:
        store: families and tokens.
        revocations: where a revoked family's ``sid`` goes, so its access
            tokens die with it.
        encryptor: seals the kept successor responses (the key-encryption key).
        settings: ``refresh_token_ttl``, ``refresh_max_age``, ``refresh_grace``.
        clock: the time every expiry is measured by.
    """

    def __init__(
        self,
        store: RefreshStore,
        revocations: RevocationReplica,
        encryptor: KeyEncryptor,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.store = store
        self.revocations = revocations
        self.encryptor = encryptor
        self.settings = settings
        self.clock = clock

    async def start(
        self,
        user_id: str,
        *,
        client_id: str | None,
        scope: str,
        ip: str | None,
        user_agent: str | None,
        family_id: str | None = None,
        session_id: str | None = None,
        dpop_jkt: str | None = None,
    ) -> IssuedFamily:
        """Open a family for a user who just signed in, with its first token.

        ``family_id`` fixes the family's handle (an authorization code's
        ``grant_id``, so a replayed code names what to revoke before the family
        even exists); ``session_id`` is the browser session it belongs to;
        ``dpop_jkt`` binds its refresh tokens to a DPoP key (RFC 9449 section 5).

        A user keeps at most ``max_refresh_families_per_user`` live families:
        beyond that the oldest are revoked, with their access tokens (by
        ``sid``), like the oldest browser sessions beyond
        ``max_sessions_per_user``. So a script that signs in over and over
        cannot pile up unbounded rows and live tokens for one account.

        Raises:
            UserNotFound: the account vanished (SQL store).
            StoreUnavailable: the store cannot be reached.
        """
        now = self.clock.now()
        family = RefreshFamily(
            id=family_id or secrets.token_urlsafe(_HANDLE_BYTES),
            user_id=user_id,
            client_id=client_id,
            scope=scope,
            created_at=now,
            last_used_at=now,
            expires_at=now + self.settings.refresh_max_age,
            ip=clean_ip(ip),
            user_agent=clean_user_agent(user_agent),
            session_id=session_id,
            dpop_jkt=dpop_jkt,
        )
        token = _new_token()
        evicted = await self.store.create_family(
            family,
            self._record(token, family, now),
            max_per_user=self.settings.max_refresh_families_per_user,
            idle_timeout=self.settings.refresh_token_ttl,
        )
        if evicted:
            await self.revocations.revoke_sids(old.id for old in evicted)
        return IssuedFamily(family, token, tuple(evicted))

    def _record(self, token: str, family: RefreshFamily, now: float) -> RefreshToken:
        expires_at = min(now + self.settings.refresh_token_ttl, family.expires_at)
        return RefreshToken(hash_refresh_token(token), family.id, now, expires_at)

    async def lookup(self, token: str) -> tuple[RefreshToken, RefreshFamily] | None:
        """The stored token and family of a well-formed refresh token, or None.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        if not looks_like_refresh_token(token):
            return None
        return await self.store.get_token(hash_refresh_token(token))

    async def rotate(
        self,
        token: str,
        respond: ResponseFactory,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> Rotation:
        """Exchange ``token`` for a successor (see the module doc).

        ``respond(family, new_refresh_token)`` builds the response; it may raise
        (say, :class:`InvalidGrant` for a disabled user) and then nothing is
        rotated.

        Raises:
            RefreshReuse: a used token after its grace window; the family is now
                revoked (its ``sid`` included).
            InvalidGrant: unknown, malformed, expired, or revoked.
            StoreUnavailable: the store cannot be reached.
        """
        if not looks_like_refresh_token(token):
            raise InvalidGrant()
        token_hash = hash_refresh_token(token)
        for attempt in range(2):  # a lost race is re-read once and answered from grace
            found = await self.store.get_token(token_hash)
            if found is None:
                raise InvalidGrant()
            stored, family = found
            now = self.clock.now()
            if not family.is_live(now) or now >= stored.expires_at:
                raise InvalidGrant()
            if stored.used_at is not None:
                return await self._repeat(stored, family, now, lost_race=attempt > 0)
            successor = _new_token()
            response = await respond(family, successor)
            grace = self.settings.refresh_grace
            payload = self._seal(token_hash, response) if grace > 0 else None
            rotated = await self.store.rotate(
                token_hash,
                self._record(successor, family, now),
                now=now,
                grace_until=now + grace if grace > 0 else None,
                grace_payload=payload,
                ip=clean_ip(ip),
                user_agent=clean_user_agent(user_agent),
            )
            if rotated:
                return Rotation(family, response, replayed=False)
        raise InvalidGrant()  # revoked concurrently

    async def _repeat(
        self, stored: RefreshToken, family: RefreshFamily, now: float, *, lost_race: bool
    ) -> Rotation:
        if stored.grace_until is not None and now < stored.grace_until:
            if stored.grace_payload is not None:
                response = self._open(stored.token_hash, stored.grace_payload)
                if response is not None:
                    return Rotation(family, response, replayed=True)
            raise InvalidGrant()  # inside the window but nothing kept: never a reuse
        if lost_race:  # rotated by a concurrent call just now (no grace): not a replay
            raise InvalidGrant()
        if stored.grace_payload is not None:
            await self.store.clear_grace(stored.token_hash)
        revoked = await self.revoke(family.id)
        raise RefreshReuse(revoked or family)

    def _seal(self, token_hash: str, response: dict[str, Any]) -> bytes:
        plaintext = json.dumps(response, separators=(",", ":")).encode()
        return self.encryptor.encrypt(token_hash, plaintext)

    def _open(self, token_hash: str, sealed: bytes) -> dict[str, Any] | None:
        try:
            value = json.loads(self.encryptor.decrypt(token_hash, sealed))
        except (ConfigurationError, ValueError):  # another KEK, or a corrupted row
            return None
        return value if isinstance(value, dict) else None

    async def revoke(self, family_id: str) -> RefreshFamily | None:
        """Revoke a family and deny its access tokens (by ``sid``).

        Returns:
            The revoked family, or None when there is no such family.

        Raises:
            StoreUnavailable: a store cannot be reached.
        """
        family = await self.store.revoke_family(family_id, self.clock.now())
        if family is not None:
            await self.revocations.revoke_sids([family.id])
        return family

    async def end_for_sessions(self, session_ids: list[str]) -> list[RefreshFamily]:
        """Revoke the families opened from these browser sessions (their
        handles) and deny their access tokens: a session's apps end with it.

        Raises:
            StoreUnavailable: a store cannot be reached.
        """
        revoked = await self.store.revoke_for_sessions(session_ids, self.clock.now())
        if revoked:
            await self.revocations.revoke_sids(family.id for family in revoked)
        return revoked

    async def end_for_client(self, user_id: str, client_id: str) -> list[RefreshFamily]:
        """Revoke the user's families of one client (its access to the account
        was withdrawn on ``/account``) and deny their access tokens.

        Raises:
            StoreUnavailable: a store cannot be reached.
        """
        ended = []
        for family in await self.store.list_families(user_id):
            if family.client_id == client_id and family.revoked_at is None:
                revoked = await self.revoke(family.id)
                if revoked is not None:
                    ended.append(revoked)
        return ended

    async def end_user_tokens(
        self, user_id: str, *, cutoff: bool = True, keep: str | None = None
    ) -> int:
        """Revoke every family of a user (but ``keep``) and deny their access
        tokens; with ``cutoff``, also every access token issued before now (the
        user's "logged out everywhere at" cut-off).

        Returns:
            How many families were revoked.

        Raises:
            StoreUnavailable: a store cannot be reached.
        """
        if cutoff:
            await self.revocations.revoke_user(user_id)
        if keep is not None:
            ended = 0
            for family in await self.store.list_families(user_id):
                if family.id != keep and family.revoked_at is None:
                    await self.revoke(family.id)
                    ended += 1
            return ended
        revoked = await self.store.revoke_for_user(user_id, self.clock.now())
        if revoked:
            await self.revocations.revoke_sids(family.id for family in revoked)
        return len(revoked)

    async def list_live(self, user_id: str) -> list[RefreshFamily]:
        """A user's live families (not revoked, before their cap, and with a token
        that has not expired from disuse), oldest first.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        now = self.clock.now()
        idle = self.settings.refresh_token_ttl
        return [
            family
            for family in await self.store.list_families(user_id)
            if family.is_live(now) and now < family.last_used_at + idle
        ]

    async def sweep(self) -> int:
        """Delete expired families and tokens, wipe kept responses whose window is
        over; returns how many rows were deleted.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        return await self.store.sweep(self.clock.now())
