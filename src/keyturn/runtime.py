"""The composition root: one :class:`Keyturn` object owns settings, clock,
stores and services, so the server, the CLI and host applications build the
same thing the same way.

(Over 300 lines: one lazily built property per service, in dependency order.
The choices are made by the parts, not here by type: the storage says whether
it is durable and where the throttles count, :func:`keyturn.keys.encryption.kek_for`
applies the key-encryption-key policy, :func:`keyturn.fanout.buses.open_bus`
picks the bus.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from limits.aio.storage import MemoryStorage as LimitsMemoryStorage
from limits.aio.storage import Storage as LimitsStorage

from keyturn.accounts.auth import AuthService
from keyturn.accounts.mfa_auth import MfaAuth
from keyturn.accounts.mfa_factors import MfaFactors
from keyturn.accounts.passwords import PasswordHasher, PasswordPolicy
from keyturn.accounts.register_throttle import RegistrationThrottle
from keyturn.accounts.service import Accounts
from keyturn.accounts.throttle import LoginThrottle
from keyturn.audit import EMAIL_HASH_KEY_PURPOSE, AuditLog
from keyturn.clock import Clock, SystemClock
from keyturn.errors import StoreUnavailable
from keyturn.fanout.changes import ChangeBus
from keyturn.fanout.instance import FanOut
from keyturn.keys.encryption import KeyEncryptor, kek_for
from keyturn.keys.rotation import KeyManager
from keyturn.oauth.clients import Clients
from keyturn.sessions.listeners import SessionListeners
from keyturn.sessions.manager import SessionManager
from keyturn.settings import Settings
from keyturn.stores.protocols import Storage
from keyturn.tokens.access import TokenIssuer, TokenVerifier
from keyturn.tokens.bearer import BearerAuthenticator
from keyturn.tokens.grants import TokenGrants
from keyturn.tokens.introspect import Introspector
from keyturn.tokens.refresh import RefreshFamilies
from keyturn.tokens.revocation import RevocationReplica
from keyturn.tokens.revoke import TokenRevoker
from keyturn.tokens.session_link import SessionTokens

if TYPE_CHECKING:
    from keyturn.dpop import DpopVerifier
    from keyturn.oauth.authorize import AuthorizationEndpoint
    from keyturn.oauth.codes import AuthorizationCodes
    from keyturn.oauth.flow_client import FlowClient
    from keyturn.oauth.fresh_login import FreshLoginMarker
    from keyturn.oidc.wiring import OidcRuntime
    from keyturn.outbox.dispatcher import Dispatcher
    from keyturn.tokens.code_grant import CodeGrant

if TYPE_CHECKING:  # mail (wave 2, #14)
    from keyturn.mail.mailer import Mailer
    from keyturn.recovery.service import Recovery
    from keyturn.recovery.wiring import MailRuntime


class Keyturn:
    """Everything one keyturn instance needs, wired together.

    Use as ``async with Keyturn(settings) as kt: ...`` or call :meth:`start` and
    :meth:`close`. Pass ``storage``, ``clock`` or ``hasher`` to replace the
    defaults (tests use a memory store, a frozen clock and a cheap hasher).

    The sign-in throttle counts in Redis when ``redis_url`` is set, else in the
    database for SQL storage (either shared by every worker and host, measured
    by ``clock``), and in process memory otherwise
    (measured by the system clock, as ``limits``' memory storage is); pass
    ``throttle_storage`` (any ``limits`` async storage) to choose another.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        storage: Storage | None = None,
        clock: Clock | None = None,
        hasher: PasswordHasher | None = None,
        throttle_storage: LimitsStorage | None = None,
        key_encryptor: KeyEncryptor | None = None,
        bus: ChangeBus | None = None,
        mailer: Mailer | None = None,
    ) -> None:
        self.settings = settings
        #: The fan-out bus to use instead of the one chosen from the settings
        #: (keyturn.buses.open_bus); tests pass a MemoryBus.
        self._bus = bus
        self._fanout: FanOut | None = None
        self.clock: Clock = clock or SystemClock()
        self.hasher = hasher or PasswordHasher.from_settings(settings)
        self.policy = PasswordPolicy(min_length=settings.min_password_length)
        self._storage = storage
        self._owns_storage = storage is None
        self._throttle_storage = throttle_storage
        self._started = False
        self._accounts: Accounts | None = None
        self._audit: AuditLog | None = None
        self._throttle: LoginThrottle | None = None
        self._register_throttle: RegistrationThrottle | None = None
        self._sessions: SessionManager | None = None
        self._auth: AuthService | None = None
        self._key_encryptor = key_encryptor
        self._revocations: RevocationReplica | None = None
        self._refresh_families: RefreshFamilies | None = None
        self._clients: Clients | None = None
        self._bearer: BearerAuthenticator | None = None
        self._grants: TokenGrants | None = None
        self._token_revoker: TokenRevoker | None = None
        self._introspector: Introspector | None = None
        self._keys: KeyManager | None = None
        self._token_issuer: TokenIssuer | None = None
        self._token_verifier: TokenVerifier | None = None
        self._authorization: AuthorizationEndpoint | None = None
        self._authorization_codes: AuthorizationCodes | None = None
        self._code_grant: CodeGrant | None = None
        # --- OpenID Connect (wave 2, #13) and the outbox dispatcher it shares.
        self._oidc: OidcRuntime | None = None
        self._dpop: DpopVerifier | None = None  # DPoP (wave 2, #16)
        self._mfa: tuple[MfaAuth, MfaFactors] | None = None  # mfa (wave 2)
        # --- mail (wave 2, #14): tests pass a MemoryMailer.
        self._mailer = mailer
        self._mail: MailRuntime | None = None
        #: The ``.kek`` file :meth:`start` just created (SQLite default), else None.
        self.generated_kek_file: Path | None = None

    async def start(self, *, migrate: bool | None = None) -> None:
        """Open the stores (migrating a SQLite file unless ``migrate=False``).

        Raises:
            DatabaseNotMigrated: a PostgreSQL schema is behind and ``migrate`` is not True.
            StoreUnavailable: the database cannot be reached.
        """
        if self._storage is None:
            from keyturn.stores.factory import open_storage

            self._storage = await open_storage(self.settings, migrate=migrate)
        await self._start_fanout()
        await self._load_keys()
        await self._start_revocations()
        if self.has_mail:  # built now, so that password changes reach it (mail, #14)
            self.mail  # noqa: B018
        # Before the first sign-in, so no failure is ever faster than the
        # slowest one (#10 item 6); if the store is down now, the first
        # sign-in calibrates instead.
        with contextlib.suppress(StoreUnavailable):
            await self.accounts.calibrate_failure_floor()
        self._started = True

    async def prepare(self, *, migrate: bool | None = None) -> None:
        """Open the stores (as :meth:`start` does) and load the signing keys,
        generating the key-encryption key and the first signing key where that
        is allowed; nothing else (no bus, no revocation replica). What ``keyturn
        serve`` checks once before its workers start, so a wrong key or an
        unreachable database fails in one place. Close with :meth:`close`.

        Raises:
            ConfigurationError: no usable key-encryption key, or a stored key
                cannot be decrypted.
            DatabaseNotMigrated: a PostgreSQL schema is behind.
            StoreUnavailable: the database cannot be reached.
        """
        if self._storage is None:
            from keyturn.stores.factory import open_storage

            self._storage = await open_storage(self.settings, migrate=migrate)
        await self._load_keys()

    async def close(self) -> None:
        """Deliver queued changes, close the stores this object opened and
        release the audit file."""
        if self._fanout is not None:
            await self._fanout.close()
            self._fanout = None
        if self._audit is not None:
            self._audit.close()
        self._audit = self._throttle = self._sessions = self._auth = None
        self._accounts = None
        self._keys = self._token_issuer = self._token_verifier = None
        self._revocations = self._refresh_families = self._clients = None
        self._bearer = self._grants = self._token_revoker = self._introspector = None
        self._authorization = self._authorization_codes = self._code_grant = None
        self._oidc = None
        self._dpop = None
        self._mfa = None
        self._mail = None
        self._started = False
        if self._storage is not None and self._owns_storage:
            await self._storage.close()
            self._storage = None

    async def _start_fanout(self) -> None:
        """Choose the change bus (unless one was given) and start listening in
        the background; an unreachable bus does not stop the start."""
        if self._fanout is None:
            bus = self._bus
            if bus is None:
                from keyturn.fanout.buses import open_bus

                bus = open_bus(self.settings, self.storage, self.clock)
            self._fanout = FanOut(self.settings, bus=bus)
            await self._fanout.start()

    @property
    def fanout(self) -> FanOut:
        """This instance's end of the change bus (see :mod:`keyturn.fanout.instance`)."""
        if self._fanout is None:
            raise RuntimeError("Keyturn.start() has not been called")
        return self._fanout

    @property
    def started(self) -> bool:
        """True between :meth:`start` and :meth:`close`."""
        return self._started

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            raise RuntimeError("Keyturn.start() has not been called")
        return self._storage

    @property
    def accounts(self) -> Accounts:
        if self._accounts is None:
            self._accounts = Accounts(
                self.storage.users, self.hasher, self.policy, self.clock, fanout=self.fanout
            )
        return self._accounts

    @property
    def audit(self) -> AuditLog:
        """The audit log (JSON lines on ``keyturn.audit`` and ``--audit-log-file``)."""
        if self._audit is None:
            self._audit = AuditLog(self.settings, self.clock)
        return self._audit

    @property
    def throttle(self) -> LoginThrottle:
        """The sign-in throttle (see the class doc for where it counts)."""
        if self._throttle is None:
            self._throttle = self._make_throttle()
        return self._throttle

    @property
    def register_throttle(self) -> RegistrationThrottle:
        """The registration throttle, counting in the sign-in throttle's storage."""
        if self._register_throttle is None:
            login = self.throttle
            throttle = RegistrationThrottle(login.storage, self.settings, login.clock)
            self._register_throttle = throttle
        return self._register_throttle

    def _make_throttle(self) -> LoginThrottle:
        if self._throttle_storage is not None:
            # keyturn's own storages carry the clock they count with; limits' own
            # ones count with the system clock.
            given = self._throttle_storage
            return LoginThrottle(given, self.settings, getattr(given, "clock", SystemClock()))
        shared = self.storage.throttle_storage(self.clock)
        if shared is not None:
            return LoginThrottle(shared, self.settings, self.clock)
        # limits' memory storage counts with the system clock.
        return LoginThrottle(LimitsMemoryStorage(), self.settings, SystemClock())

    @property
    def sessions(self) -> SessionManager:
        """Server-side browser sessions."""
        if self._sessions is None:
            storage = self.storage
            self._sessions = SessionManager(
                storage.sessions,
                storage.users,
                self.settings,
                self.clock,
                listener=SessionListeners(
                    SessionTokens(self.revocations, lambda: self.refresh_families),
                    lambda: self.oidc.backchannel if self.has_oidc else None,  # OIDC (#13)
                ),
                fanout=self.fanout,
            )
        return self._sessions

    @property
    def auth(self) -> AuthService:
        """The auth service the HTTP routes and the CLI call."""
        if self._auth is None:
            self._auth = AuthService(
                self.accounts,
                self.sessions,
                self.throttle,
                self.audit,
                self.settings,
                clock=self.clock,
                families=self.refresh_families,
                register_throttle=self.register_throttle,
            )
        return self._auth

    # --- signing keys and access tokens ----------------------------------------

    async def _load_keys(self) -> None:
        """Resolve the key-encryption key and load (or create) the signing keys."""
        if self._keys is not None:
            return
        if self._key_encryptor is not None:
            encryptor = self._key_encryptor
        else:
            # Storage we opened is the configured database (maybe an in-memory
            # SQLite); storage handed in decides by whether it outlives us.
            source = kek_for(self.settings, durable=self._owns_storage or self.storage.durable)
            self.generated_kek_file = source.created
            encryptor = source.encryptor
        self._key_encryptor = encryptor  # also seals kept refresh responses
        self.audit.use_email_key(encryptor.derive_key(EMAIL_HASH_KEY_PURPOSE))
        manager = KeyManager(
            self.storage.keys, encryptor, self.settings, self.clock, fanout=self._fanout
        )
        await manager.load()
        issuer = TokenIssuer(manager.ring, self.settings, self.clock)
        verifier = TokenVerifier(manager.ring, self.settings, self.clock)
        manager.subscribe(issuer.use_keyring)
        manager.subscribe(verifier.use_keyring)
        self._keys, self._token_issuer, self._token_verifier = manager, issuer, verifier

    @property
    def keys(self) -> KeyManager:
        """The signing keys: current ring, rotation, JWKS, reloads."""
        if self._keys is None:
            raise RuntimeError("Keyturn.start() has not been called")
        return self._keys

    @property
    def token_issuer(self) -> TokenIssuer:
        """Signs access tokens with the current signing key (follows rotations)."""
        if self._token_issuer is None:
            raise RuntimeError("Keyturn.start() has not been called")
        return self._token_issuer

    @property
    def token_verifier(self) -> TokenVerifier:
        """Verifies access tokens against the current ring (follows rotations and
        reloads; revocation is the caller's)."""
        if self._token_verifier is None:
            raise RuntimeError("Keyturn.start() has not been called")
        return self._token_verifier

    # --- refresh families, revocation, clients, and the token side -------------

    async def _start_revocations(self) -> None:
        """Load the revocation replica. An unreachable store does not stop the
        start: the replica stays unsynced, and strict checks fail closed
        (``StoreUnavailable``) until it syncs."""
        import contextlib

        from keyturn.errors import StoreUnavailable

        if self._revocations is None:
            self._revocations = RevocationReplica(
                self.storage.revocations, self.settings, self.clock, fanout=self.fanout
            )
            with contextlib.suppress(StoreUnavailable):
                await self._revocations.start()

    @property
    def revocations(self) -> RevocationReplica:
        """The in-process replica of the revocation list (jti, sid, user cut-off)."""
        if self._revocations is None:
            raise RuntimeError("Keyturn.start() has not been called")
        return self._revocations

    @property
    def refresh_families(self) -> RefreshFamilies:
        """Refresh families: issue, rotate, grace window, reuse detection."""
        if self._refresh_families is None:
            if self._key_encryptor is None:
                raise RuntimeError("Keyturn.start() has not been called")
            self._refresh_families = RefreshFamilies(
                self.storage.refresh,
                self.revocations,
                self._key_encryptor,
                self.settings,
                self.clock,
            )
        return self._refresh_families

    @property
    def clients(self) -> Clients:
        """OAuth clients: registration and client authentication."""
        if self._clients is None:
            self._clients = Clients(
                self.storage.clients, self.clock, default_scopes=self.settings.default_scopes
            )
        return self._clients

    @property
    def bearer(self) -> BearerAuthenticator:
        """The bearer path: access token in, claims and caller out (the hot path of
        every token-authenticated request; see :mod:`keyturn.tokens.bearer`)."""
        if self._bearer is None:
            self._bearer = BearerAuthenticator(
                revocations=self.revocations,
                users=self.storage.users,
                verifier=lambda: self.token_verifier,
                keys=lambda: self.keys,
                settings=self.settings,
                clock=self.clock,
                user_cache_size=100_000,
                fanout=self.fanout,
            )
        return self._bearer

    @property
    def grants(self) -> TokenGrants:
        """The password grant, the refresh grant and a session's short token."""
        if self._grants is None:
            self._grants = TokenGrants(
                auth=self.auth,
                families=self.refresh_families,
                clients=self.clients,
                users=self.storage.users,
                issuer=lambda: self.token_issuer,
                remember_user=self.bearer.remember_user,
                audit=self.audit,
                settings=self.settings,
                clock=self.clock,
                refuse_if_enrolled=self.mfa_auth.two_step.refuse_if_enrolled,
            )
        return self._grants

    @property
    def token_revoker(self) -> TokenRevoker:
        """Ends tokens: RFC 7009 revocation, a bearer caller's sign-out, a token
        device ended from the sign-ins list, and tokens exposed in a URL."""
        if self._token_revoker is None:
            self._token_revoker = TokenRevoker(
                bearer=self.bearer,
                families=self.refresh_families,
                revocations=self.revocations,
                clients=self.clients,
                audit=self.audit,
                clock=self.clock,
            )
        return self._token_revoker

    @property
    def introspector(self) -> Introspector:
        """RFC 7662 introspection (``/oauth/introspect``)."""
        if self._introspector is None:
            self._introspector = Introspector(
                bearer=self.bearer,
                families=self.refresh_families,
                revocations=self.revocations,
                users=self.storage.users,
                settings=self.settings,
                clock=self.clock,
                clients=self.storage.clients,
            )
        return self._introspector

    # --- the OAuth authorization code flow (wave 2, #12) -------------------------

    @property
    def authorization(self) -> AuthorizationEndpoint:
        """``/oauth/authorize``: requests, sign-in and consent decisions, codes."""
        if self._authorization is None:
            from keyturn.oauth.authorize import AuthorizationEndpoint
            from keyturn.oauth.consent import Consents
            from keyturn.oauth.par import PushedRequests
            from keyturn.stores.wave2 import wave2_stores

            stores = wave2_stores(self.storage)
            self._authorization = AuthorizationEndpoint(
                lookup=lambda client_id: self.flow_client(client_id),
                codes=self.authorization_codes,
                consents=Consents(stores.consents, self.clock),
                pushed=PushedRequests(
                    stores.pushed_requests, self.clock, ttl=self.settings.par_ttl
                ),
                issuer=self.settings.public_issuer,
                clock=self.clock,
            )
        return self._authorization

    @property
    def authorization_codes(self) -> AuthorizationCodes:
        """Authorization codes: issue, redeem once, purge."""
        if self._authorization_codes is None:
            from keyturn.oauth.codes import AuthorizationCodes
            from keyturn.stores.wave2 import wave2_stores

            self._authorization_codes = AuthorizationCodes(
                wave2_stores(self.storage).codes,
                self.clock,
                ttl=self.settings.authorization_code_ttl,
                replay_window=self.settings.code_replay_window,
            )
        return self._authorization_codes

    @property
    def code_grant(self) -> CodeGrant:
        """The ``authorization_code`` grant of ``/oauth/token``."""
        if self._code_grant is None:
            from keyturn.tokens.code_grant import CodeGrant

            self._code_grant = CodeGrant(
                codes=self.authorization_codes,
                families=self.refresh_families,
                users=self.storage.users,
                session_alive=self._session_alive,
                issuer=lambda: self.token_issuer,
                remember_user=self.bearer.remember_user,
                audit=self.audit,
                clock=self.clock,
                issuer_url=self.settings.public_issuer,
                sign_id_token=self.oidc.sign_id_token if self.has_oidc else None,
                id_token_sent=self.oidc.id_token_sent if self.has_oidc else None,
            )
        return self._code_grant

    # --- OpenID Connect (wave 2, #13) ---------------------------------------------

    @property
    def has_oidc(self) -> bool:
        """Whether the storage carries the wave-2 stores OIDC needs (keyturn's own
        storages do; a custom one may not: then no ID tokens)."""
        return getattr(self.storage, "wave2", None) is not None

    @property
    def outbox_dispatcher(self) -> Dispatcher:
        """This instance's one outbox dispatcher: mail's (:attr:`mail`), on which
        back-channel logout registers its handler too."""
        return self.mail.dispatcher

    @property
    def oidc(self) -> OidcRuntime:
        """ID-token signing, the ID-token session records, back-channel logout."""
        if self._oidc is None:
            if self._key_encryptor is None:
                raise RuntimeError("Keyturn.start() has not been called")
            from keyturn.oidc.wiring import OidcRuntime
            from keyturn.stores.wave2 import wave2_stores

            stores = wave2_stores(self.storage)
            self._oidc = OidcRuntime(
                self.settings,
                self.clock,
                keys=self.keys,
                clients=self.clients.get,
                id_token_sessions=stores.id_token_sessions,
                outbox=stores.outbox,
                dispatcher=self.outbox_dispatcher,
                encryptor=self._key_encryptor,
                audit=self.audit,
            )
        return self._oidc

    async def _session_alive(self, handle: str) -> bool:
        session = await self.storage.sessions.get_by_handle(handle)
        return session is not None and not session.is_expired(self.clock.now())

    async def flow_client(self, client_id: str) -> FlowClient | None:
        """The client ``client_id`` as the code flow sees it, or None.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        from keyturn.oauth.flow_client import flow_client

        record = await self.clients.get(client_id)
        if record is None:
            return None
        return flow_client(record, self.clients.allowed_scopes(record))

    def fresh_login_marker(self) -> FreshLoginMarker:
        """Signs the "sign in again" marker of ``prompt=login`` (a key derived
        from the key-encryption key)."""
        from keyturn.oauth.fresh_login import FreshLoginMarker

        if self._key_encryptor is None:
            raise RuntimeError("Keyturn.start() has not been called")
        return FreshLoginMarker(self._key_encryptor.derive_key("oauth fresh login v1"), self.clock)

    # --- DPoP (wave 2, #16) ----------------------------------------------------------

    @property
    def dpop(self) -> DpopVerifier:
        """The DPoP proof verifier (RFC 9449; :mod:`keyturn.tokens.dpop_setup`): the
        replay cache in Redis with ``--redis-url``, nonces with ``--dpop-nonce``."""
        if self._dpop is None:
            from keyturn.tokens.dpop_setup import NONCE_KEY_PURPOSE, make_dpop_verifier

            if self._key_encryptor is None:
                raise RuntimeError("Keyturn.start() has not been called")
            self._dpop = make_dpop_verifier(
                self.settings,
                self.clock,
                redis=getattr(self.storage, "redis", None),
                nonce_secret=self._key_encryptor.derive_key(NONCE_KEY_PURPOSE),
            )
        return self._dpop

    # --- mfa (wave 2) ------------------------------------------------------------

    def _mfa_services(self) -> tuple[MfaAuth, MfaFactors]:
        if self._mfa is None:
            if self._key_encryptor is None:
                raise RuntimeError("Keyturn.start() has not been called")
            from keyturn.accounts.mfa_wiring import build_mfa

            self._mfa = build_mfa(self.auth, self.storage, self._key_encryptor)
            if self.has_mail:  # SPEC: MFA changes send a notice to the account's address
                self._mfa[1].change_hooks.append(self.recovery.mfa_changed)
        return self._mfa

    @property
    def mfa_auth(self) -> MfaAuth:
        """The two-step sign-in and passkey sign-in (see :mod:`keyturn.accounts.mfa_auth`)."""
        return self._mfa_services()[0]

    @property
    def mfa_factors(self) -> MfaFactors:
        """Enrol, list and remove second factors (:mod:`keyturn.accounts.mfa_factors`)."""
        return self._mfa_services()[1]

    # --- mail and account recovery (wave 2, #14) -----------------------------------

    @property
    def has_mail(self) -> bool:
        """Whether the storage carries the outbox and account tokens (keyturn's
        own storages do; a custom one may not, and then has no mail)."""
        return getattr(self.storage, "wave2", None) is not None

    @property
    def mail(self) -> MailRuntime:
        """The mailer, the outbox dispatcher and the recovery flows."""
        if self._mail is None:
            if self._key_encryptor is None:
                raise RuntimeError("Keyturn.start() has not been called")
            from keyturn.recovery.wiring import MailRuntime
            from keyturn.stores.wave2 import wave2_stores

            stores = wave2_stores(self.storage)
            throttle = self.throttle
            self._mail = MailRuntime(
                self.settings,
                self.clock,
                outbox=stores.outbox,
                tokens=stores.account_tokens,
                encryptor=self._key_encryptor,
                auth=self.auth,
                throttle_storage=throttle.storage,
                throttle_clock=throttle.clock,
                audit=self.audit,
                mailer=self._mailer,
            )
            # A reset also ends half-finished two-step sign-ins (#15): an mfa_token
            # earned with the old password must not be finished after it.
            self._mail.recovery.reset_hooks.append(self._end_pending_sign_ins)
        return self._mail

    async def _end_pending_sign_ins(self, user_id: str) -> None:
        await self.mfa_auth.end_pending_sign_ins(user_id)

    @property
    def recovery(self) -> Recovery:
        """Password reset, e-mail verification and e-mail change."""
        return self.mail.recovery

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """An ASGI lifespan: ``FastAPI(lifespan=kt.lifespan)`` or
        ``Starlette(lifespan=kt.lifespan)``.

        Starts this instance unless it is already started, runs the background
        sweeper of expired sessions, tokens and throttle counters
        (:func:`keyturn.stores.maintenance.sweep_forever`) while the app serves, and on
        shutdown stops the sweeper and closes what it started. An instance the
        caller started stays the caller's to close. ``app`` is ignored.

        Raises:
            DatabaseNotMigrated: a PostgreSQL schema is behind.
            StoreUnavailable: the database cannot be reached at start.
        """
        from keyturn.stores.maintenance import sweep_forever

        owned = not self.started
        if owned:
            await self.start()
        sweeper = asyncio.create_task(sweep_forever(self), name="keyturn-sweeper")
        mail = self.mail if self.has_mail else None
        if mail is not None:
            if self.has_oidc:
                self.oidc  # noqa: B018 (registers the back-channel handler before it runs)
            mail.start()  # the one outbox dispatcher: mail (#14) and back-channel logout (#13)
        try:
            yield
        finally:
            if mail is not None:
                await mail.stop()
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            if owned:
                await self.close()

    async def __aenter__(self) -> Keyturn:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
