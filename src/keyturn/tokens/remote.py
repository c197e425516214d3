"""Verify keyturn access tokens in another service that knows only the issuer URL.

(Over 300 lines: one class, the downstream verifier, whose fetching,
refetch limits and introspection cache read best together.)

:class:`RemoteVerifier` fetches the issuer's RFC 8414 metadata
(``{issuer}/.well-known/oauth-authorization-server``, whose ``issuer`` must be the
configured one, character for character), then the JWK Set at its ``jwks_uri``,
and verifies RFC 9068 access tokens with keyturn's own
:class:`~keyturn.tokens.access.TokenVerifier` over :meth:`KeyRing.from_jwks
<keyturn.keys.ring.KeyRing.from_jwks>`: the same strict rules (algorithm pinned per
``kid``, every claim required, ``iss``/``aud``/``exp``/``nbf`` with the leeway) and
the same verified-token cache as the issuer itself. No database is involved.

Keys are refreshed every ``refresh_interval`` seconds; a token naming an unknown
``kid`` triggers at most one refetch per ``min_refetch_interval`` (garbage tokens
must not turn into a flood of requests, SEC-53). No request is ever driven by what a
token's header says beyond that, and none before the token is well-formed.

Revocation: a signature only proves a token was issued, not that it is still
valid. With ``introspection=(client_id, secret)`` (a confidential client made with
``keyturn client add NAME --confidential``) every verified token is also checked
at the issuer's introspection endpoint (RFC 7662); positive answers are cached for
at most ``introspection_cache_ttl`` seconds (5 at most), so a revoked token is
refused within that bound. Without it, a revoked token stays usable until its
``exp`` (at most ``--access-token-ttl``).

Usage::

    verifier = RemoteVerifier("https://auth.example.com", audience="https://api.example.com")
    claims = await verifier.verify(token)   # raises InvalidToken
    await verifier.aclose()

For FastAPI, see :mod:`keyturn.web.verify_dependency`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import urllib.parse
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Final

import httpx

from keyturn.clock import Clock, SystemClock
from keyturn.dpop import DpopVerifier, MemoryReplayCache
from keyturn.errors import ConfigurationError, InvalidDpopToken, InvalidToken, StoreUnavailable
from keyturn.keys.ring import KeyRing
from keyturn.settings import Settings
from keyturn.tokens.access import TokenVerifier
from keyturn.tokens.claims import AccessTokenClaims
from keyturn.tokens.dpop_binding import check_resource_proof

__all__ = ["IssuerUnavailable", "RemoteVerifier"]

logger = logging.getLogger("keyturn.tokens.remote")

METADATA_PATH: Final = "/.well-known/oauth-authorization-server"
#: Documents larger than this are refused (ours are a few KB).
MAX_DOCUMENT_BYTES: Final = 1024 * 1024
#: Upper bound of ``introspection_cache_ttl``: the staleness a revocation may have.
MAX_INTROSPECTION_CACHE_TTL: Final = 5.0
MAX_LEEWAY: Final = 300
_INTROSPECTION_CACHE_ENTRIES: Final = 10_000


class IssuerUnavailable(StoreUnavailable):
    """The issuer's metadata, JWKS or introspection endpoint could not be used.

    A verifier that has never loaded keys, or that must introspect, fails closed
    with this (503) rather than accepting or refusing a token it could not check.
    """

    code = "issuer_unavailable"
    default_detail = "The token issuer cannot be reached; try again shortly."


class RemoteVerifier:
    """Verifies a keyturn issuer's access tokens from its metadata and JWKS.

    Args:
        issuer: the issuer URL exactly as tokens carry it in ``iss``.
        audience: this service's identifier; tokens must carry it in ``aud``.
        introspection: ``(client_id, client_secret)`` of a confidential client, to
            check every token at the introspection endpoint (strict revocation).
        leeway: clock skew allowed on ``exp``, ``nbf`` and ``iat`` (0..300 s).
        refresh_interval: seconds between JWKS refreshes.
        min_refetch_interval: minimum seconds between refetches caused by an
            unknown ``kid``.
        introspection_cache_ttl: seconds a positive introspection answer is reused
            (at most 5).
        http: the client to fetch with (you close it); by default one is made
            (closed by :meth:`aclose`).
        clock: the time source for expiry and refresh intervals.
        timeout: seconds per request of the default client.
        dpop: checks the DPoP proofs of :meth:`verify_dpop`; by default one with
            an in-process replay cache (one instance: give several instances one
            ``DpopVerifier(RedisReplayCache.from_url(...), clock)``).

    Raises:
        ConfigurationError: an argument is out of range.
    """

    def __init__(
        self,
        issuer: str,
        *,
        audience: str,
        introspection: tuple[str, str] | None = None,
        leeway: int = 5,
        refresh_interval: float = 300,
        min_refetch_interval: float = 30,
        introspection_cache_ttl: float = 2.0,
        http: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        timeout: float = 5.0,
        dpop: DpopVerifier | None = None,
    ) -> None:
        if not issuer.startswith(("https://", "http://")):
            raise ConfigurationError("the issuer must be an http:// or https:// URL")
        if not audience:
            raise ConfigurationError("an audience is required")
        if not 0 <= leeway <= MAX_LEEWAY:
            raise ConfigurationError(f"the leeway must be between 0 and {MAX_LEEWAY} seconds")
        if min_refetch_interval < 0 or refresh_interval <= 0:
            raise ConfigurationError("refresh intervals must be positive")
        if not 0 <= introspection_cache_ttl <= MAX_INTROSPECTION_CACHE_TTL:
            raise ConfigurationError(
                f"introspection_cache_ttl must be between 0 and {MAX_INTROSPECTION_CACHE_TTL:g}"
            )
        self.issuer = issuer
        self.audience = audience
        self._introspection = introspection
        self._leeway = leeway
        self._refresh_interval = float(refresh_interval)
        self._min_refetch_interval = float(min_refetch_interval)
        self._introspection_ttl = float(introspection_cache_ttl)
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._clock: Clock = clock or SystemClock()
        self.dpop = dpop or DpopVerifier(MemoryReplayCache(self._clock), self._clock)
        self._lock = asyncio.Lock()
        self._metadata: dict[str, Any] | None = None
        self._verifier: TokenVerifier | None = None
        self._kids: frozenset[str] = frozenset()
        self._fetched_at = -math.inf
        self._refetched_at = -math.inf
        self._active: dict[str, float] = {}
        self.fetches = 0  # JWKS fetches so far (for tests and metrics)

    def __repr__(self) -> str:
        return f"RemoteVerifier({self.issuer!r}, audience={self.audience!r})"

    # --- life cycle -------------------------------------------------------------------

    async def __aenter__(self) -> RemoteVerifier:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Fetch the metadata and the JWKS now (otherwise the first verify does).

        Raises:
            IssuerUnavailable: the issuer cannot be reached or answers nonsense.
            ConfigurationError: the metadata names another issuer, or lacks the
                introspection endpoint that ``introspection`` needs.
        """
        await self._current()

    async def aclose(self) -> None:
        """Close the HTTP client if this verifier made it."""
        if self._owns_http:
            await self._http.aclose()

    @property
    def metadata(self) -> dict[str, Any]:
        """The issuer's metadata document.

        Raises:
            RuntimeError: nothing was fetched yet.
        """
        if self._metadata is None:
            raise RuntimeError("RemoteVerifier.start() has not run")
        return self._metadata

    # --- verification -----------------------------------------------------------------

    async def verify(self, token: str) -> AccessTokenClaims:
        """The claims of ``token``, sent as a bearer token, if the issuer signed it
        for this audience and (with introspection) has not revoked it. A DPoP-bound
        token (``cnf.jkt``) is refused here: its thief would need the key too, so
        it is only accepted through :meth:`verify_dpop` (RFC 9449 section 7.2).

        Raises:
            InvalidToken: for every token problem (``reason`` says which, for logs);
                :class:`~keyturn.errors.InvalidDpopToken` for a bound token.
            IssuerUnavailable: keys or the introspection answer could not be had.
        """
        claims = await self._verify(token)
        if claims.jkt is not None:
            raise InvalidDpopToken("dpop_bound_as_bearer")
        return claims

    async def verify_dpop(
        self, token: str, proofs: str | Sequence[str] | None, *, method: str, url: str
    ) -> AccessTokenClaims:
        """The claims of ``token`` sent as ``Authorization: DPoP`` with the ``DPoP``
        header value(s) ``proofs``: the token as in :meth:`verify`, bound
        (``cnf.jkt``), and a proof of that key over ``method`` and ``url`` (this
        service's public URL of the request, raw path included), with the right
        ``ath``, fresh and not seen before by ``dpop``'s replay cache.

        Raises:
            InvalidToken: the token is refused, or is not bound
                (:class:`~keyturn.errors.InvalidDpopToken`).
            InvalidDpopProof: the proof is missing, bad or replayed.
            UseDpopNonce: ``dpop`` demands nonces and the proof lacks one.
            IssuerUnavailable, StoreUnavailable: keys, introspection or the
                replay cache could not be reached.
        """
        claims = await self._verify(token)
        values = [proofs] if isinstance(proofs, str) else list(proofs or ())
        await check_resource_proof(
            self.dpop, claims, scheme="dpop", token=token, proofs=values, method=method, url=url
        )
        return claims

    async def _verify(self, token: str) -> AccessTokenClaims:
        verifier = await self._current()
        try:
            claims = verifier.verify(token)
        except InvalidToken as exc:
            if exc.reason != "unknown_kid" or not await self._refetch_for_unknown_kid():
                raise
            verifier = await self._current()
            claims = verifier.verify(token)
        if self._introspection is not None:
            await self._check_active(token, claims)
        return claims

    async def _current(self) -> TokenVerifier:
        verifier = self._verifier
        now = self._clock.now()
        if verifier is not None and now - self._fetched_at < self._refresh_interval:
            return verifier
        async with self._lock:
            if self._verifier is not None and now - self._fetched_at < self._refresh_interval:
                return self._verifier
            try:
                await self._load()
            except IssuerUnavailable:
                if self._verifier is None:
                    raise
                # Keep verifying with the keys we have; try again a little later.
                logger.warning("cannot refresh the JWKS of %s; keeping the current keys", self)
                self._fetched_at = now - self._refresh_interval + self._min_refetch_interval
        assert self._verifier is not None
        return self._verifier

    async def _refetch_for_unknown_kid(self) -> bool:
        """Refetch the JWKS for an unknown ``kid``, at most once per interval.
        True when the key set changed (the token is worth verifying again)."""
        now = self._clock.now()
        if now - self._refetched_at < self._min_refetch_interval:
            return False
        async with self._lock:
            if now - self._refetched_at < self._min_refetch_interval:
                return False
            self._refetched_at = now
            before = self._kids
            try:
                await self._load()
            except IssuerUnavailable:
                logger.warning("cannot refetch the JWKS of %s", self)
                return False
            return self._kids != before

    async def _load(self) -> None:
        """Fetch the metadata (once) and the JWKS; install a new ring and verifier."""
        if self._metadata is None:
            self._metadata = self._checked_metadata(
                await self._get_json(self.issuer.rstrip("/") + METADATA_PATH)
            )
        jwks = await self._get_json(str(self._metadata["jwks_uri"]))
        self.fetches += 1
        try:
            ring = KeyRing.from_jwks(jwks)
        except ConfigurationError as exc:
            raise _unavailable(f"the issuer's JWKS is unusable: {exc.detail}") from None
        if self._verifier is None:
            self._verifier = TokenVerifier(ring, self._settings(), self._clock)
        else:
            self._verifier.use_keyring(ring)
        self._kids = frozenset(key.kid for key in ring.keys)
        self._fetched_at = self._clock.now()

    def _checked_metadata(self, document: dict[str, Any]) -> dict[str, Any]:
        if document.get("issuer") != self.issuer:
            raise ConfigurationError(
                f"the metadata at {self.issuer} names issuer {document.get('issuer')!r}"
            )
        for name in ("jwks_uri", *(("introspection_endpoint",) if self._introspection else ())):
            value = document.get(name)
            if not isinstance(value, str) or not value.startswith(("https://", "http://")):
                raise ConfigurationError(f"the issuer's metadata has no usable {name}")
        return document

    def _settings(self) -> Settings:
        """The slice of settings :class:`TokenVerifier` reads, without the environment
        (a downstream service's ``KEYTURN_*`` variables are not ours to read)."""
        return Settings.model_construct(
            issuer=self.issuer, audience=self.audience, clock_leeway=self._leeway
        )

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise _unavailable(f"cannot fetch {url}: {type(exc).__name__}") from None
        return _json_document(response, url)

    async def _check_active(self, token: str, claims: AccessTokenClaims) -> None:
        """Ask the introspection endpoint whether ``token`` is still active (RFC 7662).

        Raises:
            InvalidToken: the issuer says it is not.
            IssuerUnavailable: no usable answer.
        """
        now = self._clock.now()
        cached = self._active.get(token)
        if cached is not None and now < cached:
            return
        assert self._introspection is not None and self._metadata is not None
        client_id, secret = self._introspection
        endpoint = str(self._metadata["introspection_endpoint"])
        auth = httpx.BasicAuth(urllib.parse.quote_plus(client_id), urllib.parse.quote_plus(secret))
        try:
            response = await self._http.post(
                endpoint,
                data={"token": token, "token_type_hint": "access_token"},
                auth=auth,
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise _unavailable(f"cannot reach {endpoint}: {type(exc).__name__}") from None
        answer = _json_document(response, endpoint)
        if answer.get("active") is not True:
            self._active.pop(token, None)
            raise InvalidToken("revoked")
        if len(self._active) >= _INTROSPECTION_CACHE_ENTRIES:
            self._active = {t: until for t, until in self._active.items() if until > now}
            while len(self._active) >= _INTROSPECTION_CACHE_ENTRIES:
                del self._active[next(iter(self._active))]
        self._active[token] = min(now + self._introspection_ttl, float(claims.exp))


def _unavailable(reason: str) -> IssuerUnavailable:
    """Log why the issuer could not be used; the error itself says nothing more
    than "unavailable" (callers of the downstream service see it)."""
    logger.warning("token issuer unavailable: %s", reason)
    return IssuerUnavailable()


def _json_document(response: httpx.Response, url: str) -> dict[str, Any]:
    """The JSON object of a 200 answer.

    Raises:
        IssuerUnavailable: another status, too large, or not a JSON object.
    """
    if response.status_code != 200:
        raise _unavailable(f"{url} answered {response.status_code}")
    if len(response.content) > MAX_DOCUMENT_BYTES:
        raise _unavailable(f"{url} answered a document that is too large")
    try:
        document = response.json()
    except ValueError:
        raise _unavailable(f"{url} did not answer JSON") from None
    if not isinstance(document, dict):
        raise _unavailable(f"{url} did not answer a JSON object")
    return document
