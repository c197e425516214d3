"""The two-step sign-in, in one place, for every path that signs a user in.

``/auth/login``, the ``/login`` page, ``/oauth/authorize`` (through ``/login``)
and the password grant all ask the same two questions after a correct
password: does this user have a second factor, and is this second factor
right? :class:`TwoStepSignIn` answers both, so the paths cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from keyturn.errors import InvalidRequest, MfaRequired
from keyturn.mfa.amr import AMR_OTP, AMR_PWD
from keyturn.mfa.challenge import (
    METHOD_RECOVERY_CODE,
    METHOD_TOTP,
    METHOD_WEBAUTHN,
    IssuedMfaToken,
    MfaChallenges,
    MfaSignIn,
    SecondFactorCheck,
)
from keyturn.mfa.recovery import RecoveryCodes
from keyturn.mfa.store import MfaChallenge
from keyturn.mfa.totp import TotpManager
from keyturn.mfa.webauthn import PasskeyAuthentication, Passkeys

__all__ = ["SecondFactors", "TwoStepSignIn"]


class SecondFactors:
    """A user's second factors together: TOTP, passkeys and recovery codes."""

    def __init__(
        self, *, totp: TotpManager, recovery: RecoveryCodes, passkeys: Passkeys | None = None
    ) -> None:
        self.totp = totp
        self.recovery = recovery
        self.passkeys = passkeys

    async def methods(self, user_id: str) -> tuple[str, ...]:
        """The second-factor methods the user can use now; empty without one.
        Recovery codes are offered only beside a real factor."""
        methods: list[str] = []
        if await self.totp.is_enabled(user_id):
            methods.append(METHOD_TOTP)
        if self.passkeys is not None and await self.passkeys.list(user_id):
            methods.append(METHOD_WEBAUTHN)
        if methods and await self.recovery.remaining(user_id) > 0:
            methods.append(METHOD_RECOVERY_CODE)
        return tuple(methods)

    async def reset(self, user_id: str) -> None:
        """Remove every factor (``keyturn user mfa-reset``; the caller audits and mails)."""
        await self.totp.remove(user_id)
        await self.recovery.remove(user_id)
        if self.passkeys is not None:
            for credential in await self.passkeys.list(user_id):
                await self.passkeys.remove(user_id, credential.id)


class TwoStepSignIn:
    """Password first, then a second factor, without a session in between."""

    def __init__(self, factors: SecondFactors, challenges: MfaChallenges) -> None:
        self._factors = factors
        self._challenges = challenges

    async def after_password(
        self, user_id: str, *, client_binding: str, payload: str = ""
    ) -> IssuedMfaToken | None:
        """Call after a correct password. None: no second factor, start the
        session with ``amr=("pwd",)``. Otherwise answer ``{"mfa_required": true,
        "mfa_token", "methods"}`` and start no session."""
        methods = await self._factors.methods(user_id)
        if not methods:
            return None
        return await self._challenges.issue(
            user_id, methods=methods, client_binding=client_binding, amr=(AMR_PWD,), payload=payload
        )

    async def peek(self, token: str, *, client_binding: str) -> MfaChallenge:
        """The live challenge of ``token`` (whose user is signing in), unspent.

        Raises:
            InvalidMfaToken: unknown, expired, used up, or another client's.
        """
        return await self._challenges.peek(token, client_binding=client_binding)

    async def refuse_if_enrolled(self, user_id: str) -> None:
        """For paths that cannot ask for a second factor (the password grant).

        Raises:
            MfaRequired: the user has a second factor.
        """
        if await self._factors.methods(user_id):
            raise MfaRequired()

    async def webauthn_options(self, token: str, *, client_binding: str) -> dict[str, Any]:
        """Request options for using a passkey as the second factor of ``token``.

        Raises:
            InvalidMfaToken: the token is not live or not this client's.
            InvalidRequest: the user has no passkey.
        """
        challenge = await self._challenges.peek(token, client_binding=client_binding)
        if self._factors.passkeys is None or METHOD_WEBAUTHN not in challenge.methods:
            raise InvalidRequest("This sign-in does not offer passkeys.")
        return await self._factors.passkeys.authentication_options(challenge.user_id)

    async def finish(
        self,
        token: str,
        *,
        client_binding: str,
        code: str | None = None,
        recovery_code: str | None = None,
        webauthn: str | Mapping[str, Any] | None = None,
    ) -> MfaSignIn:
        """Check exactly one of ``code`` (TOTP), ``recovery_code`` or ``webauthn``
        (a ``toJSON()`` assertion) and finish the sign-in. ``clone_warning`` in
        the result asks the caller to audit a passkey counter regression.

        Raises:
            InvalidRequest: not exactly one second factor given, or one not offered.
            InvalidMfaToken: the token is dead, used, or not this client's.
            InvalidMfaCode: a wrong or replayed code (``attempts_left`` set);
                count it in the account's sign-in throttle.
            WebAuthnFailed: the passkey assertion failed (also counted).
        """
        given = [value is not None for value in (code, recovery_code, webauthn)]
        if sum(given) != 1:
            raise InvalidRequest("Send one of code, recovery_code or webauthn.")
        passkey: list[PasskeyAuthentication] = []

        async def check_totp(challenge: MfaChallenge) -> Sequence[str]:
            await self._factors.totp.verify(challenge.user_id, code or "")
            return (AMR_OTP,)

        async def check_recovery(challenge: MfaChallenge) -> Sequence[str]:
            await self._factors.recovery.consume(challenge.user_id, recovery_code or "")
            return (AMR_OTP,)

        async def check_passkey(challenge: MfaChallenge) -> Sequence[str]:
            if self._factors.passkeys is None or webauthn is None:
                raise InvalidRequest("This sign-in does not offer passkeys.")
            result = await self._factors.passkeys.verify_authentication(
                webauthn, user_id=challenge.user_id
            )
            passkey.append(result)
            return result.amr

        method, check = (
            (METHOD_TOTP, check_totp),
            (METHOD_RECOVERY_CODE, check_recovery),
            (METHOD_WEBAUTHN, check_passkey),
        )[given.index(True)]
        checker: SecondFactorCheck = check
        done = await self._challenges.complete(
            token, client_binding=client_binding, method=method, check=checker
        )
        if passkey and passkey[0].clone_warning:
            done = dataclasses.replace(done, clone_warning=True)
        return done
