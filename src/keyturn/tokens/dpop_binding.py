"""How a DPoP proof at the token endpoint binds what the grants issue (RFC 9449 section 5).

Framework-free. The token endpoint verifies the request's proof
(:class:`keyturn.dpop.DpopVerifier`) and hands the grants a :class:`DpopBinding`:
the access token gets ``cnf.jkt`` and ``token_type: DPoP``; a public client's
refresh family is bound to the key too (a confidential client's refresh tokens are
already bound to its credentials, section 5), and from then on every refresh of
that family must come with a proof from the same key.

At a resource (the keyturn resolver, :mod:`keyturn.verify`),
:func:`check_resource_proof` decides whether a verified token was presented the
way its binding demands (section 7).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from keyturn.dpop import DpopVerifier, VerifiedProof
from keyturn.errors import InvalidDpopProof, InvalidDpopToken, InvalidGrant
from keyturn.stores.records import RefreshFamily
from keyturn.tokens.claims import AccessTokenClaims

__all__ = [
    "DpopBinding",
    "check_family_binding",
    "check_replayed_binding",
    "check_resource_proof",
    "token_type",
]


@dataclass(frozen=True, slots=True)
class DpopBinding:
    """A verified proof's key, as the grants use it.

    ``jkt`` is the RFC 7638 thumbprint of the proof's key (the new access token's
    ``cnf.jkt``); ``bind_refresh`` is true for public clients, whose refresh family
    is bound to that key.
    """

    jkt: str
    bind_refresh: bool

    @property
    def family_jkt(self) -> str | None:
        """The key a new refresh family is bound to, or None (confidential client)."""
        return self.jkt if self.bind_refresh else None


def token_type(dpop: DpopBinding | None) -> str:
    """``DPoP`` for a bound access token, else ``Bearer`` (RFC 9449 section 5.1)."""
    return "DPoP" if dpop is not None else "Bearer"


def check_family_binding(family: RefreshFamily, dpop: DpopBinding | None) -> None:
    """A bound family is refreshed only with a proof of its key.

    Raises:
        InvalidDpopProof: the family is bound and the request carries no proof
            (``reason`` ``missing``) or a proof of another key (``jkt_mismatch``).
    """
    if family.dpop_jkt is None:
        return
    if dpop is None:
        raise InvalidDpopProof("missing")
    if not hmac.compare_digest(dpop.jkt.encode(), family.dpop_jkt.encode()):
        raise InvalidDpopProof("jkt_mismatch")


def check_replayed_binding(claims: AccessTokenClaims, dpop: DpopBinding | None) -> None:
    """A refresh repeated within the grace window gets the pair already issued,
    so only when it asks for the same binding (the same key, or none).

    Raises:
        InvalidGrant: the kept access token is bound differently.
    """
    if claims.jkt != (dpop.jkt if dpop is not None else None):
        raise InvalidGrant()


async def check_resource_proof(
    verifier: DpopVerifier,
    claims: AccessTokenClaims,
    *,
    scheme: str,
    token: str,
    proofs: Sequence[str],
    method: str,
    url: str,
) -> VerifiedProof | None:
    """Check how an access token was presented at a resource (RFC 9449 section 7).

    ``scheme`` is the ``Authorization`` scheme, lower-cased (``bearer`` or
    ``dpop``); ``proofs`` every ``DPoP`` header value. A bound token (``cnf.jkt``)
    must come as ``DPoP`` with a valid proof of that key over this request; an
    unbound token as ``Bearer``. Returns the verified proof, or None for a bearer token.

    Raises:
        InvalidDpopToken: a bound token sent as ``Bearer``, or an unbound one as ``DPoP``.
        InvalidDpopProof: the proof is missing, malformed, for another request or
            key, too old, or replayed.
        UseDpopNonce: server nonces are on and the proof lacks the current one.
        StoreUnavailable: the replay cache cannot answer.
    """
    if scheme != "dpop":
        if claims.jkt is not None:
            raise InvalidDpopToken("dpop_bound_as_bearer")
        return None
    if claims.jkt is None:
        raise InvalidDpopToken("unbound_as_dpop")
    return await verifier.verify(
        list(proofs), method=method, url=url, access_token=token, expected_jkt=claims.jkt
    )
