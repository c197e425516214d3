"""OpenID Connect in a running keyturn: ID-token signing, the ID-token session
records and back-channel logout on the outbox dispatcher.

:class:`OidcRuntime` is built once per :class:`~keyturn.runtime.Keyturn`. It
registers the ``backchannel_logout`` handler on the instance's one outbox
:class:`~keyturn.outbox.dispatcher.Dispatcher` (shared with mail) and seals its
payloads with the outbox key derived from the key-encryption key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, cast

from keyturn.audit import AuditLog
from keyturn.clock import Clock
from keyturn.errors import ConfigurationError
from keyturn.keys.encryption import KeyEncryptor
from keyturn.keys.rotation import KeyManager
from keyturn.oidc.backchannel import (
    BACKCHANNEL_KIND,
    BackchannelLogout,
    ClientLookup,
    LogoutTokenDelivery,
)
from keyturn.oidc.id_token import IdTokenClaims, sign_id_token
from keyturn.oidc.store import IdTokenSession, IdTokenSessionStore
from keyturn.outbox.dispatcher import Dispatcher, RetryPolicy
from keyturn.outbox.sealing import AesGcmSealer
from keyturn.outbox.store import OutboxStore
from keyturn.settings import Settings

if TYPE_CHECKING:
    from keyturn.settings import SigningAlgorithm

__all__ = ["BACKCHANNEL_RETRY", "OUTBOX_KEY_PURPOSE", "OidcRuntime"]

#: The purpose the outbox sealing key is derived for (the same as mail's).
OUTBOX_KEY_PURPOSE: Final = "outbox sealing"
#: Logout tokens: 8 attempts, 5 s doubling to at most 10 min (about 20 min in all).
BACKCHANNEL_RETRY: Final = RetryPolicy(max_attempts=8, base_delay=5.0, max_delay=600.0)
_ID_TOKEN_ALGS: Final = ("RS256", "ES256", "EdDSA")


class OidcRuntime:
    """The OpenID Connect side of one keyturn instance (see the module doc)."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        keys: KeyManager,
        clients: ClientLookup,
        id_token_sessions: IdTokenSessionStore,
        outbox: OutboxStore,
        dispatcher: Dispatcher,
        encryptor: KeyEncryptor,
        audit: AuditLog,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.keys = keys
        self.id_token_sessions = id_token_sessions
        sealer = AesGcmSealer(encryptor.derive_key(OUTBOX_KEY_PURPOSE))
        self.backchannel = BackchannelLogout(
            sessions=id_token_sessions,
            clients=clients,
            outbox=outbox,
            sealer=sealer,
            wake=dispatcher.wake,
            audit=audit,
            clock=clock,
        )
        self.delivery = LogoutTokenDelivery(
            ring=lambda: keys.ring,
            ensure_key=self.ensure_key,
            clients=clients,
            sealer=sealer,
            issuer=settings.public_issuer,
            audit=audit,
            clock=clock,
        )
        dispatcher.register(BACKCHANNEL_KIND, self.delivery, BACKCHANNEL_RETRY)

    async def ensure_key(self, alg: str) -> None:
        """Make sure an active ``alg`` key signs (see :meth:`KeyManager.ensure`).

        Raises:
            ConfigurationError: ``alg`` is not RS256, ES256 or EdDSA.
            StoreUnavailable: the key store cannot be reached.
        """
        if alg not in _ID_TOKEN_ALGS:
            raise ConfigurationError(f"ID tokens cannot be signed with {alg!r}")
        await self.keys.ensure(cast("SigningAlgorithm", alg))

    async def sign_id_token(self, claims: IdTokenClaims, alg: str, access_token: str) -> str:
        """Sign an ID token with the newest ``alg`` key, making one first if the
        ring has none (the RS256 key beside the access-token key).

        Raises:
            ConfigurationError: ``alg`` is not an ID-token algorithm.
            StoreUnavailable: the key store cannot be reached.
        """
        await self.ensure_key(alg)
        return sign_id_token(
            claims,
            self.keys.ring,
            alg=alg,
            now=self.clock.now(),
            ttl=self.settings.access_token_ttl,
            access_token=access_token,
        )

    async def id_token_sent(self, session_handle: str, client_id: str, user_id: str) -> None:
        """Remember that ``client_id`` holds an ID token in this browser session.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        entry = IdTokenSession(session_handle, client_id, user_id, self.clock.now())
        await self.id_token_sessions.record(entry)

    async def purge(self) -> int:
        """Forget records older than the longest a session can live (sessions that
        expired without being ended have nobody left to tell)."""
        longest = max(self.settings.session_max_age, self.settings.remember_max_age)
        return await self.id_token_sessions.purge(self.clock.now() - longest)
