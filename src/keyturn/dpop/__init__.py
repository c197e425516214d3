"""DPoP (RFC 9449): sender-constrained tokens, the framework-free core.

Owns checking proofs (``proof``: every RFC 9449 section 4.3 rule, joserfc doing the
JOSE work; ``header``: the header rules, their outcome cached per header segment;
``signature``: the signature check with ``cryptography``'s key object; ``htu``: the
RFC 3986 normalisation of the ``htu`` comparison), the ``jti`` replay cache
(``store``: the Protocol; ``memory``; ``redis``, shared across instances) and
stateless server nonces (``nonce``). ``verifier.DpopVerifier`` puts them together.
Imports no web framework, no settings and no moving keyturn module (only errors, clock).

Integration (issue #16, done: :mod:`keyturn.tokens.dpop_setup` builds the verifier,
:mod:`keyturn.tokens.dpop_binding` and :mod:`keyturn.web.routes.dpop_token` bind at
``/oauth/token``, :mod:`keyturn.web.authn.resolver` and
:meth:`keyturn.tokens.remote.RemoteVerifier.verify_dpop` check at resources):
- Build one ``DpopVerifier(cache, clock, max_age=settings.dpop_max_age,
  clock_skew=settings.clock_leeway, nonces=...)`` per process. ``cache`` is
  ``RedisReplayCache(connection.client, unavailable=connection.unavailable)`` when
  ``--redis-url`` is set, else ``MemoryReplayCache(clock)`` (single instance only).
  ``nonces`` is ``DpopNonces(secret, clock)`` when ``--dpop-nonce`` is on; the secret
  must be shared by all instances: derive it from the key-encryption key (HKDF, label
  ``keyturn dpop-nonce``) or keep a random one in the database.
- /oauth/token: ``proof = await v.verify(headers.getlist("dpop") or None, method="POST",
  url=public token URL)`` when a DPoP header is present; bind the new access token
  with ``cnf: {"jkt": proof.jkt}`` and ``token_type: "DPoP"``; for a public client's
  refresh token store ``proof.jkt`` with the family and pass it as ``expected_jkt``
  on refresh. No header + ``--require-dpop`` + public client: ``invalid_dpop_proof``.
- Middleware / ``keyturn.verify``: ``Authorization: DPoP <at>`` -> verify the token,
  then ``v.verify(values, method=request.method, url=<scheme://host/raw_path?query>,
  access_token=at, expected_jkt=claims.cnf.jkt)``. A token with ``cnf.jkt`` sent as
  ``Bearer`` is ``invalid_token``; a ``DPoP`` token without ``cnf`` too. The URL must be
  the public one (behind a proxy: the configured issuer's scheme and host) and the
  raw, still percent-encoded path.
- ``proof.fresh_nonce`` set: add ``DPoP-Nonce: <it>`` to the successful response.

HTTP (for web/errors.py): ``InvalidDpopProof`` -> 401 with ``WWW-Authenticate: DPoP
error="invalid_dpop_proof", algs="<v.algorithms>"`` at resources, 400 JSON at
/oauth/token. ``UseDpopNonce`` -> same statuses with ``error="use_dpop_nonce"`` and
``DPoP-Nonce: <exc.nonce>`` (exactly one). ``StoreUnavailable`` -> 503. Metadata:
``dpop_signing_alg_values_supported = list(v.algorithms)``.

Proposed settings: ``--dpop-max-age`` int, default 60 (1..300); ``--dpop-nonce`` bool,
default off; ``--require-dpop`` bool, default off (public clients only);
``--dpop-replay-cache-entries`` int, default 100000 (memory cache bound).

Tables: none. The replay cache is memory or Redis (entries live 66 s; SQL would add
a write per request); a refresh family needs one nullable ``dpop_jkt`` column (SQL
integration step), and a persisted nonce secret, if not derived, one row.
"""

from keyturn.dpop.htu import normalize_uri
from keyturn.dpop.memory import MemoryReplayCache
from keyturn.dpop.nonce import DpopNonces
from keyturn.dpop.proof import (
    DEFAULT_ALGORITHMS,
    SUPPORTED_ALGORITHMS,
    VerifiedProof,
    access_token_hash,
    check_proof,
)
from keyturn.dpop.store import ReplayCache, replay_key
from keyturn.dpop.verifier import DpopVerifier

__all__ = [
    "DEFAULT_ALGORITHMS",
    "SUPPORTED_ALGORITHMS",
    "DpopNonces",
    "DpopVerifier",
    "MemoryReplayCache",
    "ReplayCache",
    "VerifiedProof",
    "access_token_hash",
    "check_proof",
    "normalize_uri",
    "replay_key",
]
