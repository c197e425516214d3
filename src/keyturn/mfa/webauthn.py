"""Passkeys (WebAuthn Level 2): registration and authentication ceremonies.

(Over 300 lines: the two WebAuthn ceremonies, registration and
authentication, which share their checks.)

py_webauthn performs the relying-party checks of WebAuthn L2 sections 7.1 and
7.2 (client data type, challenge, origin, RP ID hash, UP/UV flags, algorithm,
signature). Around it this module keeps what the library leaves to the server:

- challenges: 32 random bytes, stored as their SHA-256 with purpose, user and
  UV requirement, single use (spent by the first verification, even a failed
  one) and short-lived; the challenge in ``clientDataJSON`` finds its record;
- the user of the credential (section 7.2 step 6): a second factor must use one
  of the signed-in user's credentials; a discoverable sign-in must carry the
  user handle the credential was registered with;
- the signature counter (section 7.2 step 21): a counter that does not go up
  while either value is nonzero flags a possible cloned authenticator. We
  accept such an assertion by default and return ``clone_warning=True`` for the
  audit log: the challenge is single use, so it is not a replay, and the spec
  leaves the decision to the RP; refusing would lock out whichever copy signs
  second, often the owner. ``refuse_cloned=True`` refuses instead. The stored
  counter never moves backwards.

Options are the JSON dicts ``PublicKeyCredential.parseCreationOptionsFromJSON``
and ``parseRequestOptionsFromJSON`` read; responses are ``toJSON()`` output.
The RP ID is the issuer's host; the expected origin is the issuer's origin.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from typing import Any, Final

import webauthn as pywebauthn
from webauthn.helpers import (
    options_to_json_dict,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from keyturn.clock import Clock
from keyturn.errors import WebAuthnFailed
from keyturn.mfa.amr import AMR_HWK, AMR_SWK, combine
from keyturn.mfa.relying_party import PasskeyAuthentication, PasskeyUser, RelyingParty
from keyturn.mfa.store import (
    PasskeyCredential,
    PasskeyStore,
    WebAuthnChallenge,
    WebAuthnChallengeStore,
    WebAuthnPurpose,
)

__all__ = ["PasskeyAuthentication", "PasskeyUser", "Passkeys", "RelyingParty"]

_CHALLENGE_BYTES: Final = 32
_MAX_NAME: Final = 64
_MAX_USER_HANDLE: Final = 64  # WebAuthn L2 section 5.4.3
_MALFORMED = (WebAuthnException, ValueError, KeyError, TypeError, AttributeError)
Response = str | Mapping[str, Any]


def _digest(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


def _transports(values: list[str] | tuple[str, ...]) -> list[AuthenticatorTransport]:
    known = {transport.value for transport in AuthenticatorTransport}
    return [AuthenticatorTransport(value) for value in values if value in known]


class Passkeys:
    """Register passkeys and verify assertions for one relying party.

    ``challenge_ttl`` bounds a ceremony (seconds; also sent as the browser's
    ``timeout``). ``refuse_cloned`` (keyword-only) fails assertions whose
    signature counter went backwards instead of flagging them.
    """

    def __init__(
        self,
        credentials: PasskeyStore,
        challenges: WebAuthnChallengeStore,
        clock: Clock,
        *,
        rp: RelyingParty,
        challenge_ttl: int = 300,
        refuse_cloned: bool = False,
    ) -> None:
        self._credentials = credentials
        self._challenges = challenges
        self._clock = clock
        self._rp = rp
        self._ttl = challenge_ttl
        self._refuse_cloned = refuse_cloned

    async def _new_challenge(
        self, purpose: WebAuthnPurpose, user_id: str | None, require_uv: bool
    ) -> bytes:
        challenge = secrets.token_bytes(_CHALLENGE_BYTES)
        now = self._clock.now()
        await self._challenges.add(
            WebAuthnChallenge(
                challenge_hash=_digest(challenge),
                purpose=purpose,
                user_id=user_id,
                require_user_verification=require_uv,
                created_at=now,
                expires_at=now + self._ttl,
            )
        )
        return challenge

    async def _spend_challenge(self, client_data_json: bytes) -> tuple[WebAuthnChallenge, bytes]:
        challenge = parse_client_data_json(client_data_json).challenge
        record = await self._challenges.consume(_digest(challenge), self._clock.now())
        if record is None:
            raise WebAuthnFailed("unknown_challenge")
        return record, challenge

    async def registration_options(self, user: PasskeyUser) -> dict[str, Any]:
        """Options for ``navigator.credentials.create()``: the user's existing
        credentials excluded, a resident key and user verification preferred,
        no attestation asked.

        Raises:
            ValueError: the account id is longer than the 64-byte user handle allows.
        """
        if len(user.user_id.encode()) > _MAX_USER_HANDLE:
            raise ValueError("a WebAuthn user handle is at most 64 bytes")
        existing = await self._credentials.list_for_user(user.user_id)
        challenge = await self._new_challenge("register", user.user_id, require_uv=False)
        options = pywebauthn.generate_registration_options(
            rp_id=self._rp.id,
            rp_name=self._rp.name,
            user_id=user.user_id.encode(),
            user_name=user.name,
            user_display_name=user.display_name or user.name,
            challenge=challenge,
            timeout=self._ttl * 1000,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=[
                PublicKeyCredentialDescriptor(id=cred.id, transports=_transports(cred.transports))
                for cred in existing
            ],
        )
        return options_to_json_dict(options)

    async def verify_registration(
        self, user_id: str, response: Response, *, name: str = "Passkey"
    ) -> PasskeyCredential:
        """Verify a ``create()`` result for ``user_id`` and store the credential.

        Raises:
            WebAuthnFailed: malformed, unknown/used/expired/another user's
                challenge, any failed L2 check, or a credential id already registered.
        """
        try:
            credential = parse_registration_credential_json(_as_json(response))
            record, challenge = await self._spend_challenge(credential.response.client_data_json)
            if record.purpose != "register" or record.user_id != user_id:
                raise WebAuthnFailed("wrong_challenge")
            if parse_client_data_json(credential.response.client_data_json).cross_origin:
                raise WebAuthnFailed("cross_origin")
            verified = pywebauthn.verify_registration_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self._rp.id,
                expected_origin=self._rp.origin,
            )
        except WebAuthnFailed:
            raise
        except _MALFORMED as exc:
            raise WebAuthnFailed("registration_invalid") from exc
        stored = PasskeyCredential(
            id=verified.credential_id,
            user_id=user_id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            name=(name.strip() or "Passkey")[:_MAX_NAME],
            created_at=self._clock.now(),
            transports=tuple(t.value for t in credential.response.transports or ()),
            backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
            backed_up=verified.credential_backed_up,
            aaguid=verified.aaguid,
            attachment=(
                credential.authenticator_attachment.value
                if credential.authenticator_attachment
                else None
            ),
        )
        if not await self._credentials.add(stored):
            raise WebAuthnFailed("credential_exists")
        return stored

    async def authentication_options(self, user_id: str | None = None) -> dict[str, Any]:
        """Options for ``navigator.credentials.get()``.

        Without ``user_id``: a passwordless sign-in with a discoverable
        credential (no ``allowCredentials``), user verification required, since
        the passkey is then the whole sign-in. With ``user_id``: a second
        factor, limited to that user's credentials, user verification preferred.
        """
        allow: list[PublicKeyCredentialDescriptor] = []
        if user_id is not None:
            allow = [
                PublicKeyCredentialDescriptor(id=cred.id, transports=_transports(cred.transports))
                for cred in await self._credentials.list_for_user(user_id)
            ]
        require_uv = user_id is None
        challenge = await self._new_challenge("authenticate", user_id, require_uv)
        options = pywebauthn.generate_authentication_options(
            rp_id=self._rp.id,
            challenge=challenge,
            timeout=self._ttl * 1000,
            allow_credentials=allow,
            user_verification=(
                UserVerificationRequirement.REQUIRED
                if require_uv
                else UserVerificationRequirement.PREFERRED
            ),
        )
        as_json = options_to_json_dict(options)
        if not as_json.get("allowCredentials"):
            as_json.pop("allowCredentials", None)
        return as_json

    async def verify_authentication(
        self, response: Response, *, user_id: str | None = None
    ) -> PasskeyAuthentication:
        """Verify a ``get()`` result. ``user_id`` is the signed-in user for a
        second factor (None for a passwordless sign-in).

        Raises:
            WebAuthnFailed: malformed, unknown/used/expired challenge, a
                challenge of another ceremony or user, an unknown credential or
                one of another user, any failed L2 check (origin, RP ID hash,
                flags, signature), or a counter regression with ``refuse_cloned``.
        """
        try:
            assertion = parse_authentication_credential_json(_as_json(response))
            record, challenge = await self._spend_challenge(assertion.response.client_data_json)
            if record.purpose != "authenticate" or record.user_id != user_id:
                raise WebAuthnFailed("wrong_challenge")
            if parse_client_data_json(assertion.response.client_data_json).cross_origin:
                raise WebAuthnFailed("cross_origin")
            stored = await self._credentials.get(assertion.raw_id)
            if stored is None or (user_id is not None and stored.user_id != user_id):
                raise WebAuthnFailed("unknown_credential")
            handle = assertion.response.user_handle
            if (user_id is None and handle is None) or (
                handle is not None and handle != stored.user_id.encode()
            ):
                raise WebAuthnFailed("user_handle")
            verified = pywebauthn.verify_authentication_response(
                credential=assertion,
                expected_challenge=challenge,
                expected_rp_id=self._rp.id,
                expected_origin=self._rp.origin,
                credential_public_key=stored.public_key,
                # 0 turns the library's hard counter check off: the rule is below.
                credential_current_sign_count=0,
                require_user_verification=record.require_user_verification,
            )
        except WebAuthnFailed:
            raise
        except _MALFORMED as exc:
            raise WebAuthnFailed("assertion_invalid") from exc
        new_count = verified.new_sign_count
        clone_warning = (new_count != 0 or stored.sign_count != 0) and (
            new_count <= stored.sign_count
        )
        if clone_warning and self._refuse_cloned:
            raise WebAuthnFailed("sign_count")
        now = self._clock.now()
        await self._credentials.record_use(
            stored.id,
            sign_count=max(new_count, stored.sign_count),
            used_at=now,
            backed_up=verified.credential_backed_up,
        )
        updated = await self._credentials.get(stored.id) or stored
        kind = AMR_SWK if updated.backup_eligible else AMR_HWK
        return PasskeyAuthentication(
            user_id=stored.user_id,
            credential=updated,
            user_verified=verified.user_verified,
            amr=combine(kind, user_verified=verified.user_verified),
            clone_warning=clone_warning,
        )

    async def list(self, user_id: str) -> list[PasskeyCredential]:
        """The user's passkeys, oldest first (for ``/account``)."""
        return await self._credentials.list_for_user(user_id)

    async def remove(self, user_id: str, credential_id: bytes) -> bool:
        """Remove one of the user's passkeys; True if it existed."""
        return await self._credentials.delete(user_id, credential_id)


def _as_json(response: Response) -> str | dict[str, Any]:
    return response if isinstance(response, str) else dict(response)
