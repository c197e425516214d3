"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0), framework-free.

When browser sessions end for any reason (sign-out, sign-out everywhere, a revoke
on ``/account`` or the CLI, a password change or reset, a disabled user: every
path goes through the session manager's listener), :class:`BackchannelLogout`
takes the clients that received an ID token in those sessions
(:class:`~keyturn.oidc.store.IdTokenSessionStore`) and enqueues one outbox job per
client with a ``backchannel_logout_uri``. The request that ended the session only
pays for that insert; a failure to enqueue is logged and audited, never raised,
so signing out always works.

:class:`LogoutTokenDelivery` is the outbox handler (kind
:data:`BACKCHANNEL_KIND`): it signs a fresh logout token (section 2.4: ``typ:
logout+jwt``; ``iss``, ``aud``, ``iat``, ``exp``, ``jti``, ``sub``, ``sid``,
``events``, never ``nonce``) with the client's ID-token algorithm and POSTs it
form-encoded (``logout_token=...``) to the client. 200/204 is delivered; a
network error, a timeout or a 5xx is retried with the outbox's backoff; another
4xx is permanent (the RP refused the token). Every attempt is audited. The outbox
leases make one delivery per job however many instances run dispatchers.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Protocol

import httpx
from joserfc import jws

from keyturn.audit import AuditLog
from keyturn.clock import Clock
from keyturn.errors import KeyturnError, PermanentDeliveryError, RetryableDeliveryError
from keyturn.keys.ring import KeyRing
from keyturn.oidc.id_token import DEFAULT_ID_TOKEN_ALG, registry_for
from keyturn.oidc.store import IdTokenSessionStore
from keyturn.outbox.store import OutboxJob, OutboxStore, Sealer
from keyturn.stores.records import Session

__all__ = [
    "BACKCHANNEL_KIND",
    "LOGOUT_EVENT",
    "BackchannelLogout",
    "LogoutTokenDelivery",
    "sign_logout_token",
]

logger = logging.getLogger("keyturn.oidc")

#: The outbox job kind of a back-channel logout.
BACKCHANNEL_KIND: Final = "backchannel_logout"
#: The ``events`` member that makes a JWT a logout token (section 2.4).
LOGOUT_EVENT: Final = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_TYPE: Final = "logout+jwt"  # noqa: S105 (a media type)
#: Seconds a logout token is valid (section 2.4 recommends at most two minutes).
LOGOUT_TOKEN_TTL: Final = 120
_PAYLOAD_VERSION = 1


class LogoutClient(Protocol):
    """The client record's fields back-channel logout reads
    (:class:`keyturn.stores.records.Client` has them)."""

    @property
    def id(self) -> str: ...
    @property
    def backchannel_logout_uri(self) -> str | None: ...
    @property
    def id_token_alg(self) -> str | None: ...


ClientLookup = Callable[[str], Awaitable[LogoutClient | None]]


def sign_logout_token(
    ring: KeyRing, *, issuer: str, client_id: str, subject: str, sid: str, alg: str, now: float
) -> str:
    """A logout token for ``client_id`` about session ``sid`` of ``subject``.

    Raises:
        ConfigurationError: no active key of ``alg``, or ``alg`` is not asymmetric.
    """
    registry = registry_for(alg)
    record, key, _ = ring.signer(alg)
    iat = int(now)
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": client_id,
        "iat": iat,
        "exp": iat + LOGOUT_TOKEN_TTL,
        "jti": secrets.token_urlsafe(16),
        "sub": subject,
        "sid": sid,
        "events": {LOGOUT_EVENT: {}},
    }
    header = {"typ": LOGOUT_TOKEN_TYPE, "alg": record.alg, "kid": record.kid}
    payload = json.dumps(claims, separators=(",", ":")).encode()
    return jws.serialize_compact(header, payload, key, registry=registry)


class BackchannelLogout:
    """The session-ended listener that queues logout tokens (see the module doc).

    Args:
        sessions: which clients got an ID token in which session.
        clients: looks a client up by id.
        outbox: the job queue.
        sealer: seals job payloads (the same key as every outbox job).
        wake: tells this instance's dispatcher a job is waiting.
        audit: where ``backchannel_logout`` events go.
        clock: the time.
    """

    def __init__(
        self,
        *,
        sessions: IdTokenSessionStore,
        clients: ClientLookup,
        outbox: OutboxStore,
        sealer: Sealer,
        wake: Callable[[], None],
        audit: AuditLog,
        clock: Clock,
    ) -> None:
        self.sessions = sessions
        self.clients = clients
        self.outbox = outbox
        self.sealer = sealer
        self.wake = wake
        self.audit = audit
        self.clock = clock

    async def sessions_ended(self, sessions: Sequence[Session]) -> None:
        """Queue one logout token per client that got an ID token in ``sessions``.
        Never raises: a store outage is logged and audited (``outcome=lost``)."""
        if not sessions:
            return
        try:
            queued = await self._enqueue([session.handle for session in sessions])
        except KeyturnError as exc:
            logger.warning("back-channel logout: cannot queue logout tokens: %s", exc.code)
            for session in sessions:
                self.audit.record(
                    "backchannel_logout",
                    outcome="lost",
                    user_id=session.user_id,
                    session=session.handle,
                    reason=exc.code,
                )
            return
        if queued:
            self.wake()

    async def _enqueue(self, handles: list[str]) -> int:
        queued = 0
        for entry in await self.sessions.take_for_sessions(handles):
            client = await self.clients(entry.client_id)
            if client is None or not client.backchannel_logout_uri:
                continue
            body = {
                "v": _PAYLOAD_VERSION,
                "client_id": entry.client_id,
                "sub": entry.user_id,
                "sid": entry.session_handle,
            }
            sealed = self.sealer.seal(json.dumps(body).encode())
            job = await self.outbox.enqueue(BACKCHANNEL_KIND, sealed, now=self.clock.now())
            self.audit.record(
                "backchannel_logout",
                outcome="queued",
                user_id=entry.user_id,
                session=entry.session_handle,
                client_id=entry.client_id,
                job=job.id,
            )
            queued += 1
        return queued


class LogoutTokenDelivery:
    """The outbox handler that delivers one logout token (see the module doc).

    Args:
        ring: returns the current key ring (follows rotations).
        ensure_key: makes sure a key of an algorithm exists before signing.
        clients: looks a client up by id (at delivery time: a removed client
            or a withdrawn URI ends the job).
        sealer: opens job payloads.
        issuer: the ``iss`` of logout tokens.
        audit: where each attempt is recorded.
        clock: the time.
        http: the HTTP client (tests pass their own); None: one per delivery.
        timeout: seconds one POST may take.
    """

    def __init__(
        self,
        *,
        ring: Callable[[], KeyRing],
        ensure_key: Callable[[str], Awaitable[None]],
        clients: ClientLookup,
        sealer: Sealer,
        issuer: str,
        audit: AuditLog,
        clock: Clock,
        http: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
    ) -> None:
        self._ring = ring
        self._ensure_key = ensure_key
        self.clients = clients
        self.sealer = sealer
        self.issuer = issuer
        self.audit = audit
        self.clock = clock
        self._http = http
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"LogoutTokenDelivery(issuer={self.issuer!r})"

    async def __call__(self, job: OutboxJob) -> None:
        """Deliver the job's logout token.

        Raises:
            PermanentDeliveryError: the payload does not open, the client is gone
                or has no back-channel URI any more, or the RP answered a 4xx.
            RetryableDeliveryError: a network error, a timeout or a 5xx.
        """
        try:
            body = json.loads(self.sealer.open(job.payload))
            client_id, subject, sid = body["client_id"], body["sub"], body["sid"]
        except Exception:  # any failure to open or parse is the same permanent one
            raise PermanentDeliveryError("back-channel job payload does not open") from None
        client = await self.clients(client_id)
        uri = client.backchannel_logout_uri if client is not None else None
        if client is None or not uri:
            raise PermanentDeliveryError("the client has no back-channel logout URI")
        alg = client.id_token_alg or DEFAULT_ID_TOKEN_ALG
        await self._ensure_key(alg)
        token = sign_logout_token(
            self._ring(),
            issuer=self.issuer,
            client_id=client_id,
            subject=subject,
            sid=sid,
            alg=alg,
            now=self.clock.now(),
        )
        status = await self._post(uri, token)
        outcome = "sent" if status in (200, 204) else "failed"
        self.audit.record(
            "backchannel_logout",
            outcome=outcome,
            user_id=subject,
            session=sid,
            client_id=client_id,
            job=job.id,
            attempt=job.attempts,
            status=status,
        )
        if outcome == "sent":
            return
        if status == 0 or status >= 500 or status == 429:
            raise RetryableDeliveryError(f"the client answered {status or 'nothing'}")
        raise PermanentDeliveryError(f"the client refused the logout token ({status})")

    async def _post(self, uri: str, token: str) -> int:
        """POST the token; the status, or 0 when no answer came."""
        data = {"logout_token": token}
        try:
            if self._http is not None:
                response = await self._http.post(uri, data=data, timeout=self.timeout)
            else:
                async with httpx.AsyncClient(follow_redirects=False) as http:
                    response = await http.post(uri, data=data, timeout=self.timeout)
        except httpx.HTTPError:
            return 0
        return response.status_code
