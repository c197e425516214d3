"""Multi-factor sign-in on top of :class:`~keyturn.accounts.auth.AuthService` (#15).

(Over 300 lines: the password step, the second step and the passkey-only
sign-in share one set of throttle and audit rules, so they stay one class.)

Framework-free. Every path that signs a browser in (``/auth/login``, ``/login``
and, through ``/login?next=``, ``/oauth/authorize``) calls :meth:`MfaAuth.sign_in`
after the password and :meth:`MfaAuth.finish` for the second step, so the rules
are in one place:

- a correct password for a user with a second factor opens no session: it
  yields an ``mfa_token`` bound to the client (:mod:`keyturn.mfa.challenge`);
- the account's sign-in throttle counts wrong codes as failed sign-ins; a
  correct password alone neither counts nor clears the count (its reserved
  attempt is given back), only a finished sign-in clears it, so knowing the
  password does not buy fresh guesses at the code;
- the session carries the ``amr`` the user proved (``pwd``, ``otp``, ``hwk`` /
  ``swk``, ``mfa``); every enrolment, use, failure and reset is audited.

Factor management (:mod:`keyturn.accounts.mfa_factors`) is the other half.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keyturn.accounts.auth import AuthService
from keyturn.errors import (
    InvalidMfaCode,
    InvalidMfaToken,
    StoreUnavailable,
    TooManyAttempts,
    WebAuthnFailed,
)
from keyturn.mfa.challenge import IssuedMfaToken
from keyturn.mfa.flow import SecondFactors, TwoStepSignIn
from keyturn.mfa.store import MfaChallengeStore
from keyturn.mfa.webauthn import Passkeys
from keyturn.sessions.manager import IssuedSession
from keyturn.stores.records import User

__all__ = ["MfaAuth", "SignInOutcome", "unpack_payload"]

_MAX_PAYLOAD_NEXT = 2000


@dataclass(frozen=True, slots=True)
class SignInOutcome:
    """What a sign-in step ended with: a session, or (``pending``) the
    ``mfa_token`` of a second step still to come. ``remember`` and
    ``next_path`` are what the first step asked for, carried through."""

    user: User
    session: IssuedSession | None = None
    pending: IssuedMfaToken | None = None
    remember: bool = False
    next_path: str | None = None


def _payload(remember: bool, next_path: str | None) -> str:
    nxt = next_path if next_path and len(next_path) <= _MAX_PAYLOAD_NEXT else None
    return json.dumps({"remember": remember, "next": nxt}, separators=(",", ":"))


def unpack_payload(payload: str) -> tuple[bool, str | None]:
    """``remember`` and ``next`` as the password step stored them with the token."""
    return _unpack(payload)


def _unpack(payload: str) -> tuple[bool, str | None]:
    try:
        data = json.loads(payload) if payload else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    nxt = data.get("next")
    return bool(data.get("remember")), nxt if isinstance(nxt, str) else None


class MfaAuth:
    """The two-step sign-in and the passwordless passkey sign-in, audited.

    Args:
        auth: the password check, the throttle, sessions and the audit log.
        factors: the user's TOTP, recovery codes and passkeys.
        two_step: issues and completes ``mfa_token``\\ s.
        challenges: the ``mfa_token`` store (to end a user's pending sign-ins).
    """

    def __init__(
        self,
        auth: AuthService,
        factors: SecondFactors,
        two_step: TwoStepSignIn,
        challenges: MfaChallengeStore,
    ) -> None:
        self.auth = auth
        self.factors = factors
        self.two_step = two_step
        self._challenges = challenges

    async def sign_in(
        self,
        email: str,
        password: str,
        *,
        remember: bool,
        ip: str,
        user_agent: str | None,
        replaces_secret: str | None,
        client_binding: str,
        next_path: str | None = None,
    ) -> SignInOutcome:
        """The password step: a session (no second factor), or an ``mfa_token``.

        ``client_binding`` is the random value the caller also gave the client
        (a cookie); the second step must present the same one.

        Raises:
            TooManyAttempts, InvalidCredentials, StoreUnavailable: as
                :meth:`AuthService.check_credentials`.
        """
        user = await self.auth.check_credentials(
            email, password, ip=ip, user_agent=user_agent, defer_success=True
        )
        try:
            pending = await self.two_step.after_password(
                user.id, client_binding=client_binding, payload=_payload(remember, next_path)
            )
        except StoreUnavailable:
            await self.auth.throttle.release(user.email_key)
            raise
        if pending is None:
            await self.auth.throttle.record_success(user.email_key)
            issued = await self.auth.open_session(
                user,
                remember=remember,
                ip=ip,
                user_agent=user_agent,
                replaces_secret=replaces_secret,
            )
            return SignInOutcome(user, session=issued, remember=remember, next_path=next_path)
        await self.auth.throttle.release(user.email_key)  # neither a failure nor a success yet
        self.auth.audit.record(
            "sign_in",
            outcome="mfa_required",
            user_id=user.id,
            ip=ip,
            user_agent=user_agent,
            methods=list(pending.methods),
        )
        return SignInOutcome(user, pending=pending, remember=remember, next_path=next_path)

    async def finish(
        self,
        mfa_token: str,
        *,
        client_binding: str,
        code: str | None = None,
        recovery_code: str | None = None,
        webauthn: str | Mapping[str, Any] | None = None,
        ip: str,
        user_agent: str | None,
        replaces_secret: str | None,
    ) -> SignInOutcome:
        """The second step: one of ``code`` (TOTP), ``recovery_code`` or
        ``webauthn`` (a ``toJSON()`` assertion), then the session.

        Raises:
            InvalidRequest: not exactly one factor, or one this sign-in does not offer.
            InvalidMfaToken: the token is unknown, expired, used, worn out, or another client's.
            TooManyAttempts: the account (or client) is over the sign-in throttle.
            InvalidMfaCode: a wrong or replayed code (``attempts_left`` set).
            WebAuthnFailed: the passkey assertion failed.
            StoreUnavailable: a store is unreachable.
        """
        challenge = await self.two_step.peek(mfa_token, client_binding=client_binding)
        user = await self.auth.accounts.get(challenge.user_id)
        if user is None or user.disabled:
            raise InvalidMfaToken()
        try:
            await self.auth.throttle.check(user.email_key, ip)
        except TooManyAttempts as exc:
            self._audit_failure(user, ip, user_agent, "throttled", retry_after=exc.retry_after)
            raise
        try:
            done = await self.two_step.finish(
                mfa_token,
                client_binding=client_binding,
                code=code,
                recovery_code=recovery_code,
                webauthn=webauthn,
            )
        except (InvalidMfaCode, WebAuthnFailed) as exc:
            await self.auth.throttle.record_failure(user.email_key, ip)
            reason = exc.reason if isinstance(exc, WebAuthnFailed) else exc.code
            left = exc.attempts_left if isinstance(exc, InvalidMfaCode) else None
            self._audit_failure(user, ip, user_agent, reason, attempts_left=left)
            raise
        except Exception:
            await self.auth.throttle.release(user.email_key)
            raise
        await self.auth.throttle.record_success(user.email_key)
        if done.clone_warning:
            self.auth.audit.record(
                "passkey_clone_warning", outcome="warning", user_id=user.id, ip=ip
            )
        if done.method == "recovery_code":
            remaining = await self.factors.recovery.remaining(user.id)
            self.auth.audit.record(
                "mfa_recovery_code_used", user_id=user.id, ip=ip, remaining=remaining
            )
        remember, next_path = _unpack(done.payload)
        issued = await self.auth.open_session(
            user,
            remember=remember,
            ip=ip,
            user_agent=user_agent,
            replaces_secret=replaces_secret,
            amr=done.amr,
            method=done.method,
        )
        return SignInOutcome(user, session=issued, remember=remember, next_path=next_path)

    async def second_factor_options(self, mfa_token: str, *, client_binding: str) -> dict[str, Any]:
        """WebAuthn request options for using a passkey as this sign-in's second factor.

        Raises:
            InvalidMfaToken: the token is not live or not this client's.
            InvalidRequest: this sign-in offers no passkey.
        """
        return await self.two_step.webauthn_options(mfa_token, client_binding=client_binding)

    async def passwordless_options(self) -> dict[str, Any]:
        """WebAuthn request options for a sign-in with a discoverable passkey
        (no e-mail address, user verification required)."""
        return await self._passkeys().authentication_options()

    async def passwordless(
        self,
        response: str | Mapping[str, Any],
        *,
        ip: str,
        user_agent: str | None,
        replaces_secret: str | None,
    ) -> SignInOutcome:
        """Sign in with a passkey alone; the session's ``amr`` is ``hwk`` or
        ``swk`` plus ``mfa`` (the authenticator verified the user).

        Raises:
            WebAuthnFailed: the assertion failed (audited; a signature cannot
                be guessed, so it is not counted in the throttle).
            InvalidMfaToken: the passkey's account is disabled or gone.
            StoreUnavailable: a store is unreachable.
        """
        try:
            result = await self._passkeys().verify_authentication(response)
        except WebAuthnFailed as exc:
            self.auth.audit.record(
                "sign_in",
                outcome="failed",
                ip=ip,
                user_agent=user_agent,
                reason=exc.reason,
                method="passkey",
            )
            raise
        user = await self.auth.accounts.get(result.user_id)
        if user is None or user.disabled:
            raise WebAuthnFailed("account_unavailable")
        if result.clone_warning:
            self.auth.audit.record(
                "passkey_clone_warning", outcome="warning", user_id=user.id, ip=ip
            )
        issued = await self.auth.open_session(
            user,
            remember=False,
            ip=ip,
            user_agent=user_agent,
            replaces_secret=replaces_secret,
            amr=result.amr,
            method="passkey",
        )
        return SignInOutcome(user, session=issued)

    async def end_pending_sign_ins(self, user_id: str) -> int:
        """End every half-finished two-step sign-in of the user. Call it when
        the password changes or is reset, so an ``mfa_token`` earned with the
        old password cannot be finished. Returns how many ended.

        Raises:
            StoreUnavailable: the store is unreachable.
        """
        return await self._challenges.delete_for_user(user_id)

    def _passkeys(self) -> Passkeys:
        if self.factors.passkeys is None:  # pragma: no cover - the runtime always wires them
            raise WebAuthnFailed("passkeys_disabled")
        return self.factors.passkeys

    def _audit_failure(
        self,
        user: User,
        ip: str,
        user_agent: str | None,
        reason: str,
        *,
        attempts_left: int | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.auth.audit.record(
            "mfa_sign_in",
            outcome="throttled" if reason == "throttled" else "failed",
            user_id=user.id,
            ip=ip,
            user_agent=user_agent,
            reason=reason,
            attempts_left=attempts_left,
            retry_after=retry_after,
        )
