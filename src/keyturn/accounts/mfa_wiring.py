"""Building the multi-factor services from the settings and the stores (#15).

Kept out of :mod:`keyturn.runtime` so the composition root stays one property
per service. The choices:

- the TOTP secret is sealed with AES-256-GCM under a key derived from the
  key-encryption key (``derive_key("mfa totp")``), bound to the context
  ``keyturn-mfa-totp``; recovery-code hashes are keyed with another derived key;
  neither key is ever stored;
- the TOTP replay guard is Redis (``SET NX PXAT``) with ``--redis-url``, else
  the storage's own (SQL: a primary key shared by every instance on the
  database; memory: one process);
- the relying party is the issuer: RP ID = its host, origin = its origin.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from keyturn.accounts.auth import AuthService
from keyturn.accounts.mfa_auth import MfaAuth
from keyturn.accounts.mfa_factors import MfaFactors
from keyturn.keys.encryption import KeyEncryptor
from keyturn.mfa.challenge import MfaChallenges
from keyturn.mfa.flow import SecondFactors, TwoStepSignIn
from keyturn.mfa.recovery import RecoveryCodes
from keyturn.mfa.relying_party import RelyingParty
from keyturn.mfa.store import TotpReplayStore
from keyturn.mfa.totp import TotpManager
from keyturn.mfa.webauthn import Passkeys
from keyturn.outbox.sealing import AesGcmSealer
from keyturn.stores.wave2 import wave2_stores

__all__ = ["build_mfa"]

TOTP_KEY_PURPOSE = "mfa totp"
RECOVERY_KEY_PURPOSE = "mfa recovery codes"


def _replay_store(storage: object, default: TotpReplayStore) -> TotpReplayStore:
    redis = getattr(storage, "redis", None)
    if redis is None:
        return default
    from keyturn.stores.redis.totp_replay import RedisTotpReplayStore

    return RedisTotpReplayStore(redis)


def build_mfa(
    auth: AuthService, storage: object, encryptor: KeyEncryptor
) -> tuple[MfaAuth, MfaFactors]:
    """The sign-in and the factor-management halves, over ``storage``'s wave-2 stores.

    Raises:
        ConfigurationError: the storage has no wave-2 stores.
    """
    settings, clock = auth.settings, auth.clock
    stores = wave2_stores(storage)
    issuer = settings.public_issuer
    totp = TotpManager(
        stores.totp,
        _replay_store(storage, stores.totp_replay),
        AesGcmSealer(encryptor.derive_key(TOTP_KEY_PURPOSE), context=b"keyturn-mfa-totp"),
        clock,
        issuer=settings.totp_issuer or (urlsplit(issuer).hostname or "keyturn"),
    )
    recovery = RecoveryCodes(
        stores.recovery_codes, clock, hash_key=encryptor.derive_key(RECOVERY_KEY_PURPOSE)
    )
    passkeys = Passkeys(
        stores.passkeys,
        stores.webauthn_challenges,
        clock,
        rp=RelyingParty.from_issuer(issuer, name=settings.webauthn_rp_name),
        challenge_ttl=settings.webauthn_timeout,
        refuse_cloned=settings.webauthn_refuse_cloned,
    )
    factors = SecondFactors(totp=totp, recovery=recovery, passkeys=passkeys)
    challenges = MfaChallenges(
        stores.mfa_challenges,
        clock,
        ttl=settings.mfa_token_ttl,
        max_attempts=settings.mfa_max_attempts,
    )
    two_step = TwoStepSignIn(factors, challenges)
    return (
        MfaAuth(auth, factors, two_step, stores.mfa_challenges),
        MfaFactors(factors, stores.mfa_challenges, auth.audit),
    )
