"""Authorization codes: issue, redeem once, and report replays.

A code is 256 random bits (:func:`secrets.token_urlsafe`); the store sees only
its SHA-256, so a dump of the store redeems nothing. It lives at most 60 s
(SPEC; RFC 6749 section 4.1.2 recommends 10 minutes at most) and is bound to
everything the token endpoint must check again: client, exact redirect URI and
PKCE challenge (RFC 9700 section 4.5: code injection), plus what the tokens
will carry (scopes, nonce, browser session, ``auth_time``, ``amr``).

Redemption is single use through the store's compare-and-set. A second use is
``invalid_grant`` and carries the original record (:class:`CodeReplayed`), so
the token endpoint can revoke every token issued from the first use
(RFC 6749 section 4.1.2). A failed check (wrong client, redirect URI or
verifier) does not burn the code: the right client can still redeem it, and a
thief without the verifier gains nothing by trying.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from keyturn.clock import Clock
from keyturn.errors import CodeRejected, CodeReplayed, ConfigurationError, InvalidGrant
from keyturn.oauth.pkce import verify_code_verifier
from keyturn.oauth.store import AuthorizationCode, CodeStore

__all__ = ["MAX_CODE_TTL", "AuthorizationCodes", "IssuedCode", "hash_code"]

#: The longest a code may live, in seconds (SPEC "OAuth 2.1 authorization code flow").
MAX_CODE_TTL = 60.0
#: How long an expired code is kept so that a late replay is still recognized.
DEFAULT_REPLAY_WINDOW = 3600.0
_CODE_BYTES = 32  # 256 bits
_CODE_FORMAT = re.compile(r"[A-Za-z0-9_-]{43}")


def hash_code(code: str) -> str:
    """The stored key of a code: SHA-256, hex. A fast hash suffices: the code
    has full entropy, so there is nothing for a slow hash to protect."""
    return hashlib.sha256(code.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class IssuedCode:
    """A fresh code: ``code`` goes into the redirect and nowhere else."""

    code: str = dataclasses.field(repr=False)
    record: AuthorizationCode


class AuthorizationCodes:
    """Issue and redeem authorization codes over a :class:`CodeStore`.

    Args:
        store: where code records live.
        clock: the time source for ``created_at`` and expiry.
        ttl: seconds a code stays redeemable; more than 0 and at most 60.
        replay_window: seconds an expired code is kept for replay detection
            before :meth:`purge` deletes it.

    Raises:
        ConfigurationError: ``ttl`` is not in (0, 60].
    """

    def __init__(
        self,
        store: CodeStore,
        clock: Clock,
        *,
        ttl: float = MAX_CODE_TTL,
        replay_window: float = DEFAULT_REPLAY_WINDOW,
    ) -> None:
        if not 0 < ttl <= MAX_CODE_TTL:
            raise ConfigurationError(
                f"the authorization code TTL must be in (0, {MAX_CODE_TTL:g}] s"
            )
        self.store = store
        self.clock = clock
        self.ttl = ttl
        self.replay_window = max(0.0, replay_window)

    async def issue(
        self,
        *,
        client_id: str,
        user_id: str,
        redirect_uri: str,
        code_challenge: str,
        scopes: Iterable[str],
        session_id: str,
        auth_time: float,
        nonce: str | None = None,
        amr: Iterable[str] = (),
    ) -> IssuedCode:
        """Create a code bound to this client, redirect URI, PKCE challenge,
        scopes and browser session (``session_id``: the public handle).

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        code = secrets.token_urlsafe(_CODE_BYTES)
        now = self.clock.now()
        record = AuthorizationCode(
            code_hash=hash_code(code),
            grant_id=secrets.token_urlsafe(16),
            client_id=client_id,
            user_id=user_id,
            redirect_uri=redirect_uri,
            code_challenge=code_challenge,
            scopes=tuple(scopes),
            session_id=session_id,
            auth_time=auth_time,
            created_at=now,
            expires_at=now + self.ttl,
            nonce=nonce,
            amr=tuple(amr),
        )
        await self.store.add(record)
        return IssuedCode(code, record)

    async def redeem(
        self, code: str, *, client_id: str, redirect_uri: str, code_verifier: str
    ) -> AuthorizationCode:
        """Exchange ``code`` once, for the client that got it.

        ``client_id`` must be the authenticated client (or the public client's
        id), ``redirect_uri`` the one sent to ``/oauth/authorize``, and
        ``code_verifier`` the PKCE secret. Returns the record with ``used_at``
        set; call :meth:`mark_issued` once tokens exist.

        Raises:
            CodeReplayed: the code was redeemed before; ``.grant`` is the
                original record (``grant_id``, ``family_id``) to revoke from.
            CodeRejected: unknown or malformed code, expired, another client,
                another redirect URI, or a wrong verifier (all ``invalid_grant``).
            StoreUnavailable: the store cannot be reached.
        """
        if not isinstance(code, str) or _CODE_FORMAT.fullmatch(code) is None:
            raise CodeRejected("unknown")
        key = hash_code(code)
        record = await self.store.get(key)
        if record is None:
            raise CodeRejected("unknown")
        if record.used_at is not None:
            raise CodeReplayed(record)
        now = self.clock.now()
        if now >= record.expires_at:
            raise CodeRejected("expired")
        if client_id != record.client_id:
            raise CodeRejected("client")
        if redirect_uri != record.redirect_uri:
            raise CodeRejected("redirect_uri")
        try:
            verify_code_verifier(code_verifier, record.code_challenge)
        except InvalidGrant:
            raise CodeRejected("pkce") from None
        if not await self.store.consume(key, now):
            # Another redemption won the race: this one is the replay.
            raise CodeReplayed(await self.store.get(key) or record)
        return dataclasses.replace(record, used_at=now)

    async def mark_issued(self, grant: AuthorizationCode, family_id: str) -> None:
        """Record that tokens of refresh family ``family_id`` came from
        ``grant``, so a replay of its code reports them.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        await self.store.set_family(grant.code_hash, family_id)

    async def purge(self) -> int:
        """Delete codes expired longer ago than ``replay_window``; return how many.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        return await self.store.purge(self.clock.now() - self.replay_window)
