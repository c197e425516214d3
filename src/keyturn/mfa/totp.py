"""Time-based one-time passwords (RFC 6238): enrolment, verification, replay guard.

The parameters are the ones every authenticator app understands and that
RFC 6238 section 4 recommends: HMAC-SHA-1, 6 digits, 30 s steps, and one step of
clock drift either way (section 5.2). Codes come from pyotp; this module adds
what a server needs around them:

- a 160-bit secret (RFC 4226 section 4 asks for at least 128, recommends 160),
  shown once as base32, an ``otpauth://`` URI and a self-contained QR code SVG;
- the secret sealed at rest by a :class:`Sealer` (the key-encryption key),
  bound to its user so a sealed blob copied to another account does not open;
- replay refusal: an accepted ``(user, step)`` is remembered in a
  :class:`~keyturn.mfa.store.TotpReplayStore` until the step has left the
  window, so a code is accepted once even within its 30 s (RFC 6238 section 5.2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import secrets
from dataclasses import dataclass, field
from typing import Final, Protocol

import pyotp
import segno

from keyturn.clock import Clock
from keyturn.errors import InvalidMfaCode, NotFound
from keyturn.mfa.store import TotpFactor, TotpReplayStore, TotpStore

__all__ = [
    "TOTP_DIGITS",
    "TOTP_PERIOD",
    "TOTP_WINDOW",
    "Sealer",
    "TotpEnrolment",
    "TotpManager",
    "code_at",
    "match_step",
    "new_secret",
    "provisioning_uri",
    "qr_svg",
]

TOTP_DIGITS: Final = 6
TOTP_PERIOD: Final = 30
TOTP_WINDOW: Final = 1
SECRET_BYTES: Final = 20  # 160 bits
_MAX_CODE_LENGTH: Final = 16


class Sealer(Protocol):
    """Encrypts secrets at rest (the key-encryption key's AEAD, injected)."""

    def seal(self, plaintext: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext``."""
        ...

    def open(self, sealed: bytes) -> bytes:
        """Decrypt what :meth:`seal` made; raise if it was tampered with."""
        ...


def new_secret() -> str:
    """A fresh 160-bit TOTP secret from :mod:`secrets`, base32 without padding."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def provisioning_uri(secret: str, *, account_name: str, issuer: str) -> str:
    """The ``otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=ISSUER`` URI apps scan."""
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD).provisioning_uri(
        name=account_name, issuer_name=issuer
    )


def qr_svg(uri: str) -> str:
    """``uri`` as a QR code: one self-contained ``<svg>`` element (no scripts,
    links or external resources), safe to inline under a strict CSP."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(
        buffer, kind="svg", scale=4, xmldecl=False, svgns=True, nl=False, svgclass=None
    )
    return buffer.getvalue().decode("utf-8")


def code_at(secret: str, step: int, *, digits: int = TOTP_DIGITS) -> str:
    """The code for time step ``step`` (``floor(unix_time / 30)``)."""
    return pyotp.TOTP(secret, digits=digits, interval=TOTP_PERIOD).generate_otp(step)


def match_step(
    secret: str, code: str, now: float, *, digits: int = TOTP_DIGITS, window: int = TOTP_WINDOW
) -> int | None:
    """The time step within ``window`` steps of ``now`` whose code is ``code``,
    or None. Every candidate is compared in constant time."""
    code = "".join(code.split())
    if len(code) != digits or not (code.isascii() and code.isdigit()):
        return None
    current = int(now) // TOTP_PERIOD
    matched: int | None = None
    for step in range(current - window, current + window + 1):
        if hmac.compare_digest(code_at(secret, step, digits=digits), code) and matched is None:
            matched = step
    return matched


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    """What ``POST /auth/mfa/totp`` shows once: never logged (no repr)."""

    secret: str = field(repr=False)
    otpauth_uri: str = field(repr=False)
    qr_svg: str = field(repr=False)


class TotpManager:
    """Enrol, confirm, verify and remove a user's TOTP factor.

    ``issuer`` labels the entry in the authenticator app. ``enrolment_ttl``
    bounds how long a shown secret can still be confirmed. The replay store
    must be shared by every instance (see :class:`TotpReplayStore`).
    """

    def __init__(
        self,
        factors: TotpStore,
        replay: TotpReplayStore,
        sealer: Sealer,
        clock: Clock,
        *,
        issuer: str,
        enrolment_ttl: float = 600.0,
    ) -> None:
        self._factors = factors
        self._replay = replay
        self._sealer = sealer
        self._clock = clock
        self._issuer = issuer
        self._enrolment_ttl = enrolment_ttl

    async def begin_enrolment(self, user_id: str, *, account_name: str) -> TotpEnrolment:
        """Make a new secret, store it sealed as the pending enrolment (replacing
        an earlier pending one; an active factor keeps working until the new
        one is confirmed), and return what the user scans."""
        secret = new_secret()
        sealed = self._sealer.seal(_bind(user_id, secret))
        await self._factors.set_pending(
            TotpFactor(user_id=user_id, sealed_secret=sealed, created_at=self._clock.now())
        )
        uri = provisioning_uri(secret, account_name=account_name, issuer=self._issuer)
        return TotpEnrolment(secret=secret, otpauth_uri=uri, qr_svg=qr_svg(uri))

    async def confirm(self, user_id: str, code: str) -> None:
        """Activate the pending enrolment with a first correct code.

        Raises:
            NotFound: no enrolment is pending, or it is older than ``enrolment_ttl``.
            InvalidMfaCode: the code is wrong or was used already.
        """
        now = self._clock.now()
        pending = await self._factors.get_pending(user_id)
        if pending is None or now - pending.created_at > self._enrolment_ttl:
            raise NotFound("No TOTP enrolment is pending; start again.")
        await self._check(user_id, pending, code, now)
        if not await self._factors.activate(user_id, pending.sealed_secret, now):
            raise NotFound("The TOTP enrolment was replaced; start again.")

    async def verify(self, user_id: str, code: str) -> int:
        """Check a code against the user's active factor and spend it; returns
        the matched time step.

        Raises:
            InvalidMfaCode: no active factor, a wrong code, or a replay.
        """
        factor = await self._factors.get_active(user_id)
        if factor is None:
            raise InvalidMfaCode()
        return await self._check(user_id, factor, code, self._clock.now())

    async def is_enabled(self, user_id: str) -> bool:
        """True if the user has a confirmed TOTP factor."""
        return await self._factors.get_active(user_id) is not None

    async def remove(self, user_id: str) -> bool:
        """Remove the active and pending factor; True if there was one."""
        return await self._factors.delete(user_id)

    async def _check(self, user_id: str, factor: TotpFactor, code: str, now: float) -> int:
        if len(code) > _MAX_CODE_LENGTH:
            raise InvalidMfaCode()
        secret = _unbind(user_id, self._sealer.open(factor.sealed_secret))
        step = match_step(secret, code, now)
        if step is None:
            raise InvalidMfaCode()
        # The step is accepted until the clock is more than TOTP_WINDOW steps past it.
        expires_at = float((step + TOTP_WINDOW + 1) * TOTP_PERIOD)
        if not await self._replay.claim(user_id, step, expires_at, now):
            raise InvalidMfaCode()
        return step


def _bind(user_id: str, secret: str) -> bytes:
    """Plaintext that names its owner, so a sealed secret moved to another
    user's record fails to open there (the Sealer takes no associated data)."""
    return hashlib.sha256(user_id.encode()).digest() + secret.encode("ascii")


def _unbind(user_id: str, plaintext: bytes) -> str:
    owner, secret = plaintext[:32], plaintext[32:]
    if not hmac.compare_digest(owner, hashlib.sha256(user_id.encode()).digest()):
        raise InvalidMfaCode()
    return secret.decode("ascii")
