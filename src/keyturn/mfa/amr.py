"""Authentication method references (RFC 8176) and the assurance they add up to.

Sessions, access tokens and ID tokens carry ``amr``: the methods used at sign-in.
``mfa`` is added when two independent factors were used: a password and a
second factor, or a passkey whose authenticator verified the user (PIN or
biometric: something the user has plus something they know or are).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ACR_MFA",
    "ACR_SINGLE",
    "AMR_HWK",
    "AMR_MFA",
    "AMR_OTP",
    "AMR_PWD",
    "AMR_SWK",
    "acr_for",
    "combine",
    "is_multi_factor",
]

AMR_PWD: Final = "pwd"  # noqa: S105 (a method name, not a password)
#: TOTP codes, and recovery codes (single-use look-up secrets: RFC 8176 has no
#: closer value, and both prove possession of an enrolled secret).
AMR_OTP: Final = "otp"
#: A device-bound passkey (backup state BE=0): the key never leaves the authenticator.
AMR_HWK: Final = "hwk"
#: A synced, multi-device passkey (BE=1): the key is copied between devices.
AMR_SWK: Final = "swk"
AMR_MFA: Final = "mfa"

#: ``acr`` values (proposed): one factor, or more than one.
ACR_SINGLE: Final = "urn:keyturn:acr:1fa"
ACR_MFA: Final = "urn:keyturn:acr:mfa"

_ORDER: Final = (AMR_PWD, AMR_OTP, AMR_HWK, AMR_SWK, AMR_MFA)


def combine(*methods: str, user_verified: bool = False) -> tuple[str, ...]:
    """The ``amr`` of a sign-in that used ``methods``, in a stable order.

    ``mfa`` is added when a knowledge factor (``pwd``) and a possession factor
    (``otp``, ``hwk``, ``swk``) were both used, or when a passkey was used with
    user verification (``user_verified``).
    """
    unique = set(methods) - {AMR_MFA}
    possession = unique & {AMR_OTP, AMR_HWK, AMR_SWK}
    passkey = unique & {AMR_HWK, AMR_SWK}
    if (AMR_PWD in unique and possession) or (passkey and user_verified):
        unique.add(AMR_MFA)
    known = [method for method in _ORDER if method in unique]
    return tuple(known + sorted(unique - set(_ORDER)))


def is_multi_factor(amr: tuple[str, ...] | list[str]) -> bool:
    """True if ``amr`` records a multi-factor sign-in (what ``require(mfa=True)`` asks)."""
    return AMR_MFA in amr


def acr_for(amr: tuple[str, ...] | list[str]) -> str:
    """The ``acr`` claim for a sign-in with this ``amr``."""
    return ACR_MFA if is_multi_factor(amr) else ACR_SINGLE
