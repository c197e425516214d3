"""The storage contract of multi-factor sign-in: records and one Protocol per store.

Conventions (the same as :mod:`keyturn.stores`): times are POSIX seconds from the
caller's clock; grant-bearing secrets (recovery codes, ``mfa_token``\\ s, WebAuthn
challenges) reach a store only as hashes computed by the caller; TOTP secrets
only sealed with the key-encryption key; every method is atomic on its own.
The memory implementations in :mod:`keyturn.mfa.memory` are the reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

# --- TOTP -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TotpFactor:
    """A user's TOTP secret, sealed (never stored or shown in the clear).

    ``confirmed_at`` is None while the enrolment waits for its first code.
    """

    user_id: str
    sealed_secret: bytes = field(repr=False)
    created_at: float
    confirmed_at: float | None = None


class TotpStore(Protocol):
    """At most one active and one pending TOTP factor per user. A pending
    enrolment does not disturb the active factor until it is confirmed, so a
    user can move to a new phone without a gap."""

    async def set_pending(self, factor: TotpFactor) -> None:
        """Store ``factor`` as the user's pending enrolment, replacing any."""
        ...

    async def get_pending(self, user_id: str) -> TotpFactor | None:
        """The pending enrolment, or None."""
        ...

    async def activate(self, user_id: str, sealed_secret: bytes, confirmed_at: float) -> bool:
        """Make the pending enrolment the active factor (replacing the old one),
        only if it still holds ``sealed_secret`` (compare-and-set, so a code
        checked against one secret never activates another). True on success."""
        ...

    async def get_active(self, user_id: str) -> TotpFactor | None:
        """The confirmed factor, or None."""
        ...

    async def delete(self, user_id: str) -> bool:
        """Remove the active and the pending factor; True if there was either."""
        ...


class TotpReplayStore(Protocol):
    """The accepted (user, time step) pairs, so that a code is accepted once.

    Must be shared by every instance (Redis ``SET NX EX`` or a SQL unique key);
    the memory implementation holds only in one process.
    """

    async def claim(self, user_id: str, step: int, expires_at: float, now: float) -> bool:
        """Remember ``(user_id, step)`` until ``expires_at``. True the first
        time, False if it is already remembered (the code is a replay)."""
        ...


# --- recovery codes -------------------------------------------------------------------


class RecoveryCodeStore(Protocol):
    """Each user's current set of recovery-code hashes."""

    async def replace(self, user_id: str, code_hashes: Sequence[str], created_at: float) -> None:
        """Make ``code_hashes`` the user's whole set; the old set stops working."""
        ...

    async def consume(self, user_id: str, code_hash: str) -> bool:
        """Remove one hash from the user's set if present (atomic, so a code is
        used once even by concurrent requests). True if it was there."""
        ...

    async def remaining(self, user_id: str) -> int:
        """How many unused codes the user has."""
        ...

    async def delete(self, user_id: str) -> None:
        """Remove the user's set."""
        ...


# --- the mfa_token of a two-step sign-in ------------------------------------------------


@dataclass(frozen=True, slots=True)
class MfaChallenge:
    """A half-finished sign-in: the first factor passed, the second is awaited.

    ``token_hash`` (SHA-256 hex of the ``mfa_token``) is the key;
    ``binding_hash`` (SHA-256 hex of the caller's client binding) ties it to the
    client that started it. ``attempts`` counts second-factor codes checked so
    far; ``payload`` is opaque caller state (e.g. remember-me, the next URL).
    """

    token_hash: str
    user_id: str
    binding_hash: str
    methods: tuple[str, ...]
    amr: tuple[str, ...]
    created_at: float
    expires_at: float
    attempts: int = 0
    payload: str = ""


class MfaChallengeStore(Protocol):
    """Pending second factors keyed by ``token_hash``; a record is invisible once
    ``expires_at`` has passed (a TTL store may drop it by itself)."""

    async def add(self, challenge: MfaChallenge) -> None:
        """Store a new challenge."""
        ...

    async def get(self, token_hash: str, now: float) -> MfaChallenge | None:
        """The live challenge, or None."""
        ...

    async def claim_attempt(
        self, token_hash: str, now: float, max_attempts: int
    ) -> MfaChallenge | None:
        """Count one more code against the challenge, atomically, and return it
        updated; None (and the record deleted) if it is gone, expired, or
        already had ``max_attempts`` codes. Counting *before* the code is
        checked bounds guesses even when they arrive in parallel."""
        ...

    async def consume(self, token_hash: str, now: float) -> bool:
        """Delete the live challenge; True if this call deleted it (single use)."""
        ...

    async def delete(self, token_hash: str) -> None:
        """Delete the challenge if present."""
        ...

    async def delete_for_user(self, user_id: str) -> int:
        """Delete every challenge of the user (a password reset or change, an
        MFA reset: a half-finished sign-in must not outlive the password it
        checked); how many."""
        ...


# --- WebAuthn -------------------------------------------------------------------------

WebAuthnPurpose = Literal["register", "authenticate"]


@dataclass(frozen=True, slots=True)
class WebAuthnChallenge:
    """A ceremony the server started. ``challenge_hash`` is the SHA-256 hex of the
    challenge bytes; ``user_id`` is None for a discoverable (usernameless)
    sign-in; ``require_user_verification`` is what the options demanded."""

    challenge_hash: str
    purpose: WebAuthnPurpose
    user_id: str | None
    require_user_verification: bool
    created_at: float
    expires_at: float


class WebAuthnChallengeStore(Protocol):
    """Single-use ceremony challenges."""

    async def add(self, challenge: WebAuthnChallenge) -> None:
        """Store a new challenge."""
        ...

    async def consume(self, challenge_hash: str, now: float) -> WebAuthnChallenge | None:
        """Delete and return the live challenge (atomic, single use); None if it
        is unknown, expired, or was consumed already."""
        ...


@dataclass(frozen=True, slots=True)
class PasskeyCredential:
    """A registered WebAuthn credential.

    ``public_key`` is the COSE key as registered; ``sign_count`` the highest
    signature counter seen; ``backup_eligible`` / ``backed_up`` the BE / BS
    flags (a backup-eligible credential is a synced, multi-device passkey);
    ``attachment`` what the browser reported (``platform`` / ``cross-platform``).
    """

    id: bytes
    user_id: str
    public_key: bytes = field(repr=False)
    sign_count: int
    name: str
    created_at: float
    last_used_at: float | None = None
    transports: tuple[str, ...] = ()
    backup_eligible: bool = False
    backed_up: bool = False
    aaguid: str = ""
    attachment: str | None = None


class PasskeyStore(Protocol):
    """Registered credentials keyed by credential id, indexed by user."""

    async def add(self, credential: PasskeyCredential) -> bool:
        """Store a new credential; False (nothing stored) if the id is taken."""
        ...

    async def get(self, credential_id: bytes) -> PasskeyCredential | None:
        """The credential with this id, or None."""
        ...

    async def list_for_user(self, user_id: str) -> list[PasskeyCredential]:
        """The user's credentials, oldest first."""
        ...

    async def record_use(
        self, credential_id: bytes, *, sign_count: int, used_at: float, backed_up: bool
    ) -> None:
        """Store the counter, time and backup state of a successful assertion."""
        ...

    async def delete(self, user_id: str, credential_id: bytes) -> bool:
        """Remove one of the user's credentials; True if it existed."""
        ...

    async def delete_all(self, user_id: str) -> int:
        """Remove every credential of the user (``mfa-reset``); how many."""
        ...
