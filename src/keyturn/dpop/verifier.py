"""The DPoP verifier: :func:`~keyturn.dpop.proof.check_proof` plus the state.

:meth:`DpopVerifier.verify` takes the request's ``DPoP`` header value(s), method and
URL (and, at a resource, the access token and its ``cnf.jkt``), and returns the
:class:`~keyturn.dpop.proof.VerifiedProof` or raises. On top of the stateless checks
it demands exactly one proof, the server's nonce when nonces are on
(:class:`~keyturn.errors.UseDpopNonce` carries the fresh one), and records the proof
in the replay cache last, so only a proof that passed every other check takes a
cache entry and a second use of it is refused everywhere the cache is shared.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace

from keyturn.clock import Clock
from keyturn.dpop.nonce import DpopNonces
from keyturn.dpop.proof import (
    DEFAULT_ALGORITHMS,
    MAX_PROOF_LENGTH,
    SUPPORTED_ALGORITHMS,
    VerifiedProof,
    check_proof,
)
from keyturn.dpop.store import ReplayCache, replay_key
from keyturn.errors import InvalidDpopProof, UseDpopNonce

__all__ = ["DEFAULT_CLOCK_SKEW", "DEFAULT_MAX_AGE", "DpopVerifier"]

#: Seconds a proof's ``iat`` may lie in the past (``--dpop-max-age``).
DEFAULT_MAX_AGE = 60
#: Seconds a proof's ``iat`` may lie in the future (the client's clock running ahead).
DEFAULT_CLOCK_SKEW = 5


class DpopVerifier:
    """Verifies DPoP proofs for one server; see the module docstring.

    Args:
        replay_cache: where accepted proofs are remembered (shared by every
            instance, or replays on another instance go unnoticed).
        clock: the time source.
        max_age: seconds an ``iat`` may be old.
        clock_skew: seconds an ``iat`` may be ahead.
        nonces: when given, every proof must carry one of its nonces (unless a call
            says ``require_nonce=False``).
        algorithms: accepted ``alg`` values, a subset of ``SUPPORTED_ALGORITHMS``.
        max_proof_length: longer header values are refused unparsed.

    Raises:
        ValueError: a negative or non-finite window, an empty or unsupported
            algorithm list.
    """

    __slots__ = (
        "_algorithms",
        "_allowed",
        "_cache",
        "_clock",
        "_clock_skew",
        "_max_age",
        "_max_length",
        "_nonces",
        "_ttl",
    )

    def __init__(
        self,
        replay_cache: ReplayCache,
        clock: Clock,
        *,
        max_age: float = DEFAULT_MAX_AGE,
        clock_skew: float = DEFAULT_CLOCK_SKEW,
        nonces: DpopNonces | None = None,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        max_proof_length: int = MAX_PROOF_LENGTH,
    ) -> None:
        if not (math.isfinite(max_age) and max_age > 0):
            raise ValueError("max_age must be a positive number of seconds")
        if not (math.isfinite(clock_skew) and clock_skew >= 0):
            raise ValueError("clock_skew must be zero or more seconds")
        allowed = tuple(dict.fromkeys(algorithms))
        if not allowed or not set(allowed) <= SUPPORTED_ALGORITHMS:
            raise ValueError(f"algorithms must be some of {sorted(SUPPORTED_ALGORITHMS)}")
        self._cache = replay_cache
        self._clock = clock
        self._max_age = float(max_age)
        self._clock_skew = float(clock_skew)
        self._nonces = nonces
        self._algorithms = allowed
        self._allowed = frozenset(allowed)
        self._max_length = max_proof_length
        # A proof is accepted from iat - clock_skew until iat + max_age, so its entry
        # must outlive the latest accepted iat (now + skew) by max_age.
        self._ttl = math.ceil(self._max_age + self._clock_skew) + 1

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The accepted algorithms, for ``dpop_signing_alg_values_supported``."""
        return self._algorithms

    @property
    def nonces(self) -> DpopNonces | None:
        """The server nonces, or None when they are off."""
        return self._nonces

    @property
    def replay_ttl(self) -> int:
        """Seconds each accepted proof stays in the replay cache."""
        return self._ttl

    async def verify(
        self,
        proof: str | Sequence[str] | None,
        *,
        method: str,
        url: str,
        access_token: str | None = None,
        expected_jkt: str | None = None,
        require_nonce: bool | None = None,
    ) -> VerifiedProof:
        """The verified proof of a request, recorded as used.

        Args:
            proof: the ``DPoP`` header: its one value, or every value received
                (``headers.getlist("dpop")``), or None when it is absent.
            method: the request method, as received (``htm`` must equal it).
            url: the absolute request URL as received, scheme and host included
                (the raw, still percent-encoded path; the query is ignored).
            access_token: the access token sent with the proof (``ath`` must be
                its hash); None at the token endpoint.
            expected_jkt: the ``cnf.jkt`` the token (or a bound refresh token) is
                bound to; None when nothing is bound yet.
            require_nonce: demand the server nonce; None follows the constructor.

        Raises:
            InvalidDpopProof: no proof, more than one, or any check failed
                (``reason`` says which, ``replayed`` for a second use).
            UseDpopNonce: the nonce is required and missing, stale or forged;
                ``nonce`` is the one to send in ``DPoP-Nonce``.
            StoreUnavailable: the replay cache cannot answer (refuse the request).
            ValueError: ``require_nonce=True`` without nonces configured.
        """
        value = _single(proof)
        checked = check_proof(
            value,
            method=method,
            url=url,
            now=self._clock.now(),
            max_age=self._max_age,
            clock_skew=self._clock_skew,
            algorithms=self._allowed,
            access_token=access_token,
            expected_jkt=expected_jkt,
            max_length=self._max_length,
        )
        nonces = self._nonces
        if require_nonce is None:
            require_nonce = nonces is not None
        if require_nonce:
            if nonces is None:
                raise ValueError("require_nonce=True needs a DpopVerifier with nonces")
            state = nonces.check(checked.nonce)
            if state == "invalid":
                reason = "nonce_missing" if checked.nonce is None else "nonce_invalid"
                raise UseDpopNonce(nonces.current(), reason)
            if state == "previous":
                checked = replace(checked, fresh_nonce=nonces.current())
        key = replay_key(checked.jkt, checked.htu, checked.jti)
        if not await self._cache.add(key, self._ttl):
            raise InvalidDpopProof("replayed")
        return checked


def _single(proof: str | Sequence[str] | None) -> str:
    """The one proof of a request (RFC 9449 section 4.3: not more than one ``DPoP``
    header, and its value a single JWT; a comma means two values folded into one)."""
    if proof is None:
        raise InvalidDpopProof("missing")
    if not isinstance(proof, str):
        values = list(proof)
        if len(values) != 1:
            raise InvalidDpopProof("missing" if not values else "multiple")
        proof = values[0]
        if not isinstance(proof, str):
            raise InvalidDpopProof("malformed")
    proof = proof.strip(" \t")
    if not proof:
        raise InvalidDpopProof("missing")
    if "," in proof:
        raise InvalidDpopProof("multiple")
    return proof
