"""Enrolling and removing second factors, audited (#15).

Framework-free. The HTTP layer demands a fresh sign-in (``--fresh-auth-window``)
before it calls any of these; this module keeps the rules between the factors:

- confirming a TOTP enrolment issues a new set of 10 recovery codes;
- recovery codes exist only beside a real factor: removing the last factor
  (TOTP and every passkey) removes them, and a new set needs a factor;
- ``reset`` (``keyturn user mfa-reset``) removes every factor and ends the
  user's half-finished sign-ins.

Every change is one audit event (``mfa_totp_enrolled``, ``mfa_totp_removed``,
``mfa_recovery_codes_issued``, ``passkey_added``, ``passkey_removed``,
``mfa_reset``) and one call of each :attr:`MfaFactors.change_hooks` entry, with a
sentence for the account's owner: the runtime mails it as the "sign-in methods
changed" notice (SPEC: MFA changes send a notice to the account's address), so a
factor added by someone holding a stolen session does not go unseen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from keyturn.audit import AuditLog
from keyturn.errors import InvalidRequest, NotFound, WebAuthnFailed
from keyturn.mfa.flow import SecondFactors
from keyturn.mfa.relying_party import PasskeyUser
from keyturn.mfa.store import MfaChallengeStore, PasskeyCredential
from keyturn.mfa.totp import TotpEnrolment
from keyturn.mfa.webauthn import Passkeys
from keyturn.stores.records import User

__all__ = ["MfaChangeHook", "MfaFactors", "MfaStatus"]

#: Called after every change of a user's factors with the user and one sentence that
#: says what changed ("An authenticator app was added."), for the owner's notice.
MfaChangeHook = Callable[[User, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class MfaStatus:
    """A user's second factors, for ``/account`` and ``GET /auth/mfa``."""

    totp: bool
    recovery_codes_left: int
    passkeys: tuple[PasskeyCredential, ...]

    @property
    def enabled(self) -> bool:
        """True when a sign-in with the password alone is no longer enough."""
        return self.totp or bool(self.passkeys)


class MfaFactors:
    """A user's TOTP, recovery codes and passkeys: enrol, list, remove."""

    def __init__(
        self, factors: SecondFactors, challenges: MfaChallengeStore, audit: AuditLog
    ) -> None:
        self.factors = factors
        self._challenges = challenges
        self.audit = audit
        #: Run in order after each change (see :data:`MfaChangeHook`); the runtime
        #: appends the mailer's notice when mail is configured.
        self.change_hooks: list[MfaChangeHook] = []

    @property
    def passkeys(self) -> Passkeys:
        """The passkey ceremonies (always wired by the runtime)."""
        if self.factors.passkeys is None:  # pragma: no cover - the runtime always wires them
            raise RuntimeError("passkeys are not configured")
        return self.factors.passkeys

    async def status(self, user_id: str) -> MfaStatus:
        """What the user has enrolled.

        Raises:
            StoreUnavailable: a store is unreachable.
        """
        return MfaStatus(
            totp=await self.factors.totp.is_enabled(user_id),
            recovery_codes_left=await self.factors.recovery.remaining(user_id),
            passkeys=tuple(await self.passkeys.list(user_id)),
        )

    async def begin_totp(self, user: User) -> TotpEnrolment:
        """A new pending TOTP secret (shown once); an active factor keeps working
        until the new one is confirmed."""
        enrolment = await self.factors.totp.begin_enrolment(user.id, account_name=user.email)
        self.audit.record("mfa_totp_enrolment_started", user_id=user.id)
        return enrolment

    async def confirm_totp(self, user: User, code: str, *, ip: str | None) -> list[str]:
        """Activate the pending secret with its first code; returns the new
        recovery codes (shown once).

        Raises:
            NotFound: no enrolment is pending (or it is too old).
            InvalidMfaCode: the code is wrong or used.
        """
        await self.factors.totp.confirm(user.id, code)
        codes = await self.factors.recovery.regenerate(user.id)
        self.audit.record("mfa_totp_enrolled", user_id=user.id, ip=ip)
        self.audit.record("mfa_recovery_codes_issued", user_id=user.id, ip=ip, count=len(codes))
        await self._changed(user, "An authenticator app was set up, with new recovery codes.")
        return codes

    async def remove_totp(self, user: User, *, ip: str | None) -> None:
        """Remove the TOTP factor (and the recovery codes if no passkey is left).

        Raises:
            NotFound: the user has no TOTP factor.
        """
        if not await self.factors.totp.remove(user.id):
            raise NotFound("No authenticator app is set up.")
        self.audit.record("mfa_totp_removed", user_id=user.id, ip=ip)
        await self._drop_orphaned_codes(user, ip)
        await self._changed(user, "The authenticator app was removed.")

    async def regenerate_recovery_codes(self, user: User, *, ip: str | None) -> list[str]:
        """A new set of 10 codes; the old set stops working.

        Raises:
            InvalidRequest: the user has no second factor to recover.
        """
        if not (await self.status(user.id)).enabled:
            raise InvalidRequest("Set up an authenticator app or a passkey first.")
        codes = await self.factors.recovery.regenerate(user.id)
        self.audit.record("mfa_recovery_codes_issued", user_id=user.id, ip=ip, count=len(codes))
        await self._changed(
            user, "A new set of recovery codes was issued; the old codes no longer work."
        )
        return codes

    async def passkey_registration_options(self, user: User) -> dict[str, Any]:
        """Options for ``navigator.credentials.create()`` (the JSON that
        ``PublicKeyCredential.parseCreationOptionsFromJSON`` reads)."""
        return await self.passkeys.registration_options(PasskeyUser(user.id, user.email))

    async def register_passkey(
        self, user: User, response: str | Mapping[str, Any], *, name: str, ip: str | None
    ) -> PasskeyCredential:
        """Verify a ``create()`` result (``toJSON()``) and store the passkey.

        Raises:
            WebAuthnFailed: the registration failed verification (audited).
        """
        try:
            credential = await self.passkeys.verify_registration(user.id, response, name=name)
        except WebAuthnFailed as exc:
            self.audit.record(
                "passkey_added", outcome="failed", user_id=user.id, ip=ip, reason=exc.reason
            )
            raise
        self.audit.record(
            "passkey_added",
            user_id=user.id,
            ip=ip,
            passkey=credential.id.hex()[:32],
            name=credential.name,
            synced=credential.backup_eligible,
        )
        await self._changed(user, f"A passkey was added: {credential.name}.")
        return credential

    async def remove_passkey(self, user: User, passkey_id: bytes, *, ip: str | None) -> None:
        """Remove one of the user's passkeys.

        Raises:
            NotFound: the user has no such passkey.
        """
        if not await self.passkeys.remove(user.id, passkey_id):
            raise NotFound("No such passkey.")
        self.audit.record("passkey_removed", user_id=user.id, ip=ip, passkey=passkey_id.hex()[:32])
        await self._drop_orphaned_codes(user, ip)
        await self._changed(user, "A passkey was removed.")

    async def reset(self, user: User) -> None:
        """Remove every factor of the user and end their pending sign-ins
        (``keyturn user mfa-reset``: the account is back to password only)."""
        await self.factors.reset(user.id)
        ended = await self._challenges.delete_for_user(user.id)
        self.audit.record("mfa_reset", user_id=user.id, email=user.email, pending_ended=ended)
        await self._changed(
            user,
            "Every second factor (authenticator app, recovery codes, passkeys) was removed"
            " by an administrator; the account signs in with the password alone.",
        )

    async def _changed(self, user: User, change: str) -> None:
        for hook in self.change_hooks:
            await hook(user, change)

    async def _drop_orphaned_codes(self, user: User, ip: str | None) -> None:
        status = await self.status(user.id)
        if not status.enabled and status.recovery_codes_left:
            await self.factors.recovery.remove(user.id)
            self.audit.record("mfa_recovery_codes_removed", user_id=user.id, ip=ip)
