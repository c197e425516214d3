"""The ``mfa_token`` of a two-step sign-in.

A correct password for an account with a second factor yields no session: it
yields an ``mfa_token`` that stands for "the first factor passed" (OWASP ASVS
V6 / SEC-17: a half-authenticated state never yields a full session). The
token is 256 random bits, stored only as its SHA-256, lives at most 300 s, is
bound to the client that started the sign-in (a caller-chosen binding value,
e.g. a random pre-session cookie, compared in constant time), takes at most 5
codes, and is spent by the first correct one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from keyturn.clock import Clock
from keyturn.errors import InvalidMfaCode, InvalidMfaToken, InvalidRequest, WebAuthnFailed
from keyturn.mfa.amr import AMR_PWD, combine
from keyturn.mfa.store import MfaChallenge, MfaChallengeStore

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_TTL",
    "METHOD_RECOVERY_CODE",
    "METHOD_TOTP",
    "METHOD_WEBAUTHN",
    "IssuedMfaToken",
    "MfaChallenges",
    "MfaSignIn",
    "SecondFactorCheck",
]

METHOD_TOTP: Final = "totp"
METHOD_RECOVERY_CODE: Final = "recovery_code"
METHOD_WEBAUTHN: Final = "webauthn"
MAX_TTL: Final = 300
MAX_ATTEMPTS: Final = 5
_TOKEN_BYTES: Final = 32
_MAX_TOKEN_LENGTH: Final = 128

#: Checks the second factor for the challenge's user and returns the ``amr``
#: methods it proved (e.g. ``("otp",)``), or raises InvalidMfaCode / WebAuthnFailed.
SecondFactorCheck = Callable[[MfaChallenge], Awaitable[Sequence[str]]]


@dataclass(frozen=True, slots=True)
class IssuedMfaToken:
    """The answer to the password step: ``{"mfa_required": true, "mfa_token",
    "methods"}``. The token is never logged (no repr)."""

    token: str = field(repr=False)
    expires_at: float
    methods: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MfaSignIn:
    """A finished two-step sign-in: start the session with this ``amr``.
    ``clone_warning``: a passkey's signature counter went backwards (audit it)."""

    user_id: str
    amr: tuple[str, ...]
    method: str
    payload: str
    clone_warning: bool = False


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class MfaChallenges:
    """Issue and complete ``mfa_token``\\ s.

    ``ttl`` (at most 300 s) and ``max_attempts`` (at most 5) may only be made
    stricter than SPEC.
    """

    def __init__(
        self,
        store: MfaChallengeStore,
        clock: Clock,
        *,
        ttl: int = MAX_TTL,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        if not 0 < ttl <= MAX_TTL:
            raise ValueError(f"ttl must be between 1 and {MAX_TTL} seconds")
        if not 0 < max_attempts <= MAX_ATTEMPTS:
            raise ValueError(f"max_attempts must be between 1 and {MAX_ATTEMPTS}")
        self._store = store
        self._clock = clock
        self._ttl = ttl
        self._max_attempts = max_attempts

    async def issue(
        self,
        user_id: str,
        *,
        methods: Sequence[str],
        client_binding: str,
        amr: Sequence[str] = (AMR_PWD,),
        payload: str = "",
    ) -> IssuedMfaToken:
        """Start the second step for ``user_id``, who passed ``amr`` and has
        ``methods`` (``totp``, ``recovery_code``, ``webauthn``).

        Raises:
            ValueError: ``client_binding`` or ``methods`` is empty (a programming error).
        """
        if not client_binding or not methods:
            raise ValueError("an mfa_token needs a client binding and at least one method")
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        now = self._clock.now()
        challenge = MfaChallenge(
            token_hash=_digest(token),
            user_id=user_id,
            binding_hash=_digest(client_binding),
            methods=tuple(methods),
            amr=tuple(amr),
            created_at=now,
            expires_at=now + self._ttl,
            payload=payload,
        )
        await self._store.add(challenge)
        return IssuedMfaToken(
            token=token, expires_at=challenge.expires_at, methods=challenge.methods
        )

    async def peek(self, token: str, *, client_binding: str) -> MfaChallenge:
        """The live challenge behind ``token`` without spending anything (e.g. to
        build WebAuthn options for its user or to render ``/login/mfa``).

        Raises:
            InvalidMfaToken: unknown, expired, used up, or another client's.
        """
        if not token or len(token) > _MAX_TOKEN_LENGTH:
            raise InvalidMfaToken()
        challenge = await self._store.get(_digest(token), self._clock.now())
        if challenge is None or not hmac.compare_digest(
            challenge.binding_hash, _digest(client_binding)
        ):
            raise InvalidMfaToken()
        return challenge

    async def complete(
        self, token: str, *, client_binding: str, method: str, check: SecondFactorCheck
    ) -> MfaSignIn:
        """Check a second factor against the challenge and, if it is right, spend
        the token. A wrong code counts one attempt; the last one kills the token.

        Raises:
            InvalidMfaToken: the token is unknown, expired, used, worn out, or
                another client's.
            InvalidRequest: ``method`` is not one this sign-in offered.
            InvalidMfaCode: the code is wrong (``attempts_left`` says how many remain).
            WebAuthnFailed: the passkey assertion failed (counted like a wrong code).
        """
        challenge = await self.peek(token, client_binding=client_binding)
        if method not in challenge.methods:
            raise InvalidRequest("This sign-in does not offer that method.")
        now = self._clock.now()
        claimed = await self._store.claim_attempt(challenge.token_hash, now, self._max_attempts)
        if claimed is None:
            raise InvalidMfaToken()
        try:
            proved = await check(claimed)
        except (InvalidMfaCode, WebAuthnFailed) as exc:
            left = self._max_attempts - claimed.attempts
            if left <= 0:
                await self._store.delete(claimed.token_hash)
            if isinstance(exc, InvalidMfaCode):
                raise InvalidMfaCode(attempts_left=left) from exc
            raise
        if not await self._store.consume(claimed.token_hash, self._clock.now()):
            raise InvalidMfaToken()  # a concurrent request spent it first
        return MfaSignIn(
            user_id=claimed.user_id,
            amr=combine(*claimed.amr, *proved),
            method=method,
            payload=claimed.payload,
        )
