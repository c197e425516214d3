"""Who a WebAuthn ceremony is for, and what a verified assertion yields.

:class:`RelyingParty` derives the RP ID (the issuer's host) and the expected
origin (the issuer's origin) from the issuer URL; :class:`PasskeyUser` is the
account a passkey is created for; :class:`PasskeyAuthentication` the outcome of
:meth:`keyturn.mfa.webauthn.Passkeys.verify_authentication`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from keyturn.mfa.store import PasskeyCredential

__all__ = ["PasskeyAuthentication", "PasskeyUser", "RelyingParty"]


@dataclass(frozen=True, slots=True)
class RelyingParty:
    """Who the credentials belong to: ``id`` (a host name), ``origin``
    (``scheme://host[:port]``) and a display ``name``."""

    id: str
    origin: str
    name: str

    @classmethod
    def from_issuer(cls, issuer: str, *, name: str = "keyturn") -> RelyingParty:
        """RP ID = the issuer's host, expected origin = the issuer's origin.

        Raises:
            ValueError: the issuer is not an absolute http(s) URL with a host.
        """
        parts = urlsplit(issuer)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("the issuer must be an absolute http(s) URL")
        return cls(id=parts.hostname, origin=f"{parts.scheme}://{parts.netloc}", name=name)


@dataclass(frozen=True, slots=True)
class PasskeyUser:
    """The account a passkey is created for. ``name`` (e.g. the e-mail address)
    and ``display_name`` are shown by the authenticator; the user handle is
    the account id, which must be opaque (no personal data) and <= 64 bytes."""

    user_id: str
    name: str
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class PasskeyAuthentication:
    """A verified assertion. ``amr`` is ``hwk`` or ``swk`` (synced passkeys), plus
    ``mfa`` when the authenticator verified the user; audit ``clone_warning``."""

    user_id: str
    credential: PasskeyCredential
    user_verified: bool
    amr: tuple[str, ...]
    clone_warning: bool
