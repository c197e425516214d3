"""The key ring: the signing keys in use right now, loaded once.

:class:`KeyRing` turns a snapshot of :class:`~keyturn.keys.records.SigningKey` records into
loaded key objects once (parsing keys per request costs up to 60x a verify), picks the
newest key of each algorithm to sign with (one active key per algorithm in use: the
access-token algorithm ``--signing-alg``, and RS256, ES256 or EdDSA for ID tokens),
answers "which key verifies ``kid``?" for every key whose tokens may still be alive,
and exports the public JWK Set. :meth:`KeyRing.from_jwks`
builds a verify-only ring from another issuer's published JWKS.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from joserfc.jwa import JWSAlgModel
from joserfc.jwk import Key

from keyturn.errors import ConfigurationError
from keyturn.keys.records import (
    PRIVATE_JWK_MEMBERS,
    SigningKey,
    jws_algorithm,
    load_private_key,
    public_key_from_jwk,
)
from keyturn.settings import Settings, SigningAlgorithm

__all__ = [
    "KeyRing",
    "VerificationKey",
]


class VerificationKey(NamedTuple):
    """A loaded key that may verify tokens, and the one algorithm it allows."""

    key: Key
    alg: SigningAlgorithm


@dataclass(frozen=True, slots=True)
class _Loaded:
    record: SigningKey
    verify_key: Key
    algorithm: JWSAlgModel
    usable_until: float


class KeyRing:
    """A snapshot of signing keys, loaded once.

    ``keys`` are plaintext records (see
    :meth:`~keyturn.keys.encryption.KeyEncryptor.unseal`). The newest unretired key
    of each algorithm signs for that algorithm; :attr:`signing_key` (access tokens)
    is the one of ``signing_alg``, or the newest unretired key of any algorithm when
    ``signing_alg`` is None or has no active key. A key verifies
    while it is unretired, and for ``access_token_ttl + clock_leeway`` seconds after
    it was retired: tokens it signed may still be alive. Keys past that window at
    ``now`` are not loaded at all. Rebuild the ring when the stored keys change.

    Raises:
        ConfigurationError: duplicate ``kid``s, or a record that fails
            :func:`~keyturn.keys.records.load_private_key`.
    """

    __slots__ = ("_keys", "_primary", "_signers", "_verifiers", "_window")

    def __init__(
        self,
        keys: Sequence[SigningKey],
        *,
        now: float,
        access_token_ttl: int,
        clock_leeway: int,
        signing_alg: SigningAlgorithm | None = None,
    ) -> None:
        self._window = float(access_token_ttl + clock_leeway)
        self._verifiers: dict[str, _Loaded] = {}
        signers: dict[str, tuple[_Loaded, Key]] = {}
        for record in keys:
            if record.kid in self._verifiers:
                raise ConfigurationError(f"duplicate signing key id {record.kid!r}")
            usable_until = (
                math.inf if record.retired_at is None else record.retired_at + self._window
            )
            if now >= usable_until:
                continue
            private = load_private_key(record)
            verify_key = private if record.is_symmetric else _public_part(private)
            algorithm = jws_algorithm(record.alg)
            _check_key_type(record, algorithm, verify_key)
            loaded = _Loaded(record, verify_key, algorithm, usable_until)
            self._verifiers[record.kid] = loaded
            current = signers.get(record.alg)
            if record.retired_at is None and (
                current is None
                or (record.created_at, record.kid)
                > (current[0].record.created_at, current[0].record.kid)
            ):
                signers[record.alg] = (loaded, private)
        self._keys = tuple(loaded.record for loaded in self._verifiers.values())
        self._signers = signers
        self._primary = _primary(signers, signing_alg)

    @classmethod
    def from_settings(
        cls, keys: Sequence[SigningKey], settings: Settings, *, now: float
    ) -> KeyRing:
        """A ring whose retirement window follows ``settings``."""
        return cls(
            keys,
            now=now,
            access_token_ttl=settings.access_token_ttl,
            clock_leeway=settings.clock_leeway,
            signing_alg=settings.signing_alg,
        )

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any], *, created_at: float = 0.0) -> KeyRing:
        """A verify-only ring from a published JWK Set (``{"keys": [...]}``), for
        services that only have an issuer's JWKS.

        Each JWK must carry ``kid`` and ``alg`` (one of EdDSA, ES256, RS256): the
        algorithm is pinned from the JWK, never from a token. ``oct`` keys, JWKs with
        private members, ``use`` other than ``sig``, and key types or sizes that do
        not fit ``alg`` are refused. The ring cannot sign (:attr:`signing_key` raises).

        Raises:
            ConfigurationError: the set or one of its keys breaks a rule above.
        """
        entries = jwks.get("keys") if isinstance(jwks, Mapping) else None
        if not isinstance(entries, list):
            raise ConfigurationError('a JWK Set needs a "keys" list')
        ring = cls.__new__(cls)
        ring._window = 0.0
        ring._verifiers = {}
        ring._signers = {}
        ring._primary = None
        for jwk in entries:
            record, key = public_key_from_jwk(jwk, created_at)
            if record.kid in ring._verifiers:
                raise ConfigurationError(f"duplicate key id {record.kid!r} in the JWK Set")
            algorithm = jws_algorithm(record.alg)
            _check_key_type(record, algorithm, key)
            ring._verifiers[record.kid] = _Loaded(record, key, algorithm, math.inf)
        ring._keys = tuple(loaded.record for loaded in ring._verifiers.values())
        return ring

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        """The records that still verify (retired ones inside their window included)."""
        return self._keys

    @property
    def signing_key(self) -> SigningKey:
        """The newest unretired key: the one that signs new tokens.

        Raises:
            ConfigurationError: every key is retired (rotate to make one).
        """
        if self._primary is None:
            raise ConfigurationError("no active signing key: run `keyturn key rotate`")
        return self._signers[self._primary][0].record

    def signs(self, alg: str) -> bool:
        """Whether an unretired key of ``alg`` is in the ring."""
        return alg in self._signers

    def signer(self, alg: str | None = None) -> tuple[SigningKey, Key, JWSAlgModel]:
        """The signing record, its loaded private key and joserfc's algorithm:
        the access-token key (:attr:`signing_key`), or with ``alg`` the newest
        unretired key of that algorithm (ID tokens).

        Raises:
            ConfigurationError: no unretired key (of ``alg``).
        """
        name = self._primary if alg is None else alg
        if name is None or name not in self._signers:
            what = "" if alg is None else f" {alg}"
            raise ConfigurationError(f"no active{what} signing key: run `keyturn key rotate`")
        loaded, private = self._signers[name]
        return loaded.record, private, loaded.algorithm

    def verification_key(self, kid: str, *, now: float | None = None) -> VerificationKey:
        """The key ``kid`` names and the only algorithm it accepts.

        ``kid`` is only ever a dictionary key here: no path, query or URL is built
        from it. With ``now``, a retired key whose window has closed since the ring
        was built is refused too.

        Raises:
            KeyError: no such key (or no longer usable at ``now``).
        """
        loaded = self._verifiers[kid]
        if now is not None and now >= loaded.usable_until:
            raise KeyError(kid)
        return VerificationKey(loaded.verify_key, loaded.record.alg)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWK Set to publish: public members of every asymmetric key that still
        verifies, each with ``kid``, ``alg`` and ``use: "sig"``. HMAC keys never
        appear."""
        published = []
        for loaded in self._verifiers.values():
            record = loaded.record
            if record.is_symmetric:
                continue
            jwk = {k: v for k, v in record.public_jwk.items() if k not in PRIVATE_JWK_MEMBERS}
            published.append({**jwk, "kid": record.kid, "alg": record.alg, "use": "sig"})
        return {"keys": published}


def _primary(signers: Mapping[str, tuple[_Loaded, Key]], alg: str | None) -> str | None:
    """The algorithm that signs access tokens: ``alg`` when it has an active key,
    else the algorithm of the newest active key (None: no active key at all)."""
    if alg is not None and alg in signers:
        return alg
    newest = max(
        signers.values(),
        key=lambda pair: (pair[0].record.created_at, pair[0].record.kid),
        default=None,
    )
    return None if newest is None else newest[0].record.alg


def _check_key_type(record: SigningKey, algorithm: JWSAlgModel, key: Key) -> None:
    """joserfc's own guard: the key type must be the algorithm's (no HMAC with an
    RSA key and the like). Done once per ring, not per token."""
    try:
        algorithm.check_key(key)
    except Exception:  # joserfc raises several JoseError kinds here
        raise ConfigurationError(f"signing key {record.kid!r} does not fit {record.alg}") from None


def _public_part(private: Key) -> Key:
    """The public half as its own key object, so verify never derives it per call."""
    public = private.as_dict(private=False)
    return type(private).import_key(public)
