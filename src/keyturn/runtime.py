"""The composition root: one :class:`Keyturn` object owns settings, clock,
stores and services, so the server, the CLI and host applications build the
same thing the same way."""

from __future__ import annotations

from types import TracebackType

from limits.aio.storage import MemoryStorage as LimitsMemoryStorage
from limits.aio.storage import Storage as LimitsStorage

from keyturn.accounts import Accounts
from keyturn.audit import AuditLog
from keyturn.auth import AuthService
from keyturn.clock import Clock, SystemClock
from keyturn.passwords import PasswordHasher, PasswordPolicy
from keyturn.ratelimit import LoginThrottle
from keyturn.sessions import SessionManager
from keyturn.settings import Settings
from keyturn.stores.base import Storage


class Keyturn:
    """Everything one keyturn instance needs, wired together.

    Use as ``async with Keyturn(settings) as kt: ...`` or call :meth:`start` and
    :meth:`close`. Pass ``storage``, ``clock`` or ``hasher`` to replace the
    defaults (tests use a memory store, a frozen clock and a cheap hasher).

    The sign-in throttle counts in the database for SQL storage (shared by every
    worker and host, measured by ``clock``), and in process memory otherwise
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
    ) -> None:
        self.settings = settings
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
        self._sessions: SessionManager | None = None
        self._auth: AuthService | None = None

    async def start(self, *, migrate: bool | None = None) -> None:
        """Open the stores (migrating a SQLite file unless ``migrate=False``).

        Raises:
            DatabaseNotMigrated: a PostgreSQL schema is behind and ``migrate`` is not True.
            StoreUnavailable: the database cannot be reached.
        """
        if self._storage is None:
            from keyturn.stores.factory import open_storage

            self._storage = await open_storage(self.settings, migrate=migrate)
        self._started = True

    async def close(self) -> None:
        """Close the stores this object opened and release the audit file."""
        if self._audit is not None:
            self._audit.close()
        self._audit = self._throttle = self._sessions = self._auth = None
        self._accounts = None
        self._started = False
        if self._storage is not None and self._owns_storage:
            await self._storage.close()
            self._storage = None

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
            self._accounts = Accounts(self.storage.users, self.hasher, self.policy, self.clock)
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

    def _make_throttle(self) -> LoginThrottle:
        if self._throttle_storage is not None:
            return LoginThrottle(self._throttle_storage, self.settings)
        from keyturn.stores.sql import SqlStorage

        storage = self.storage
        if isinstance(storage, SqlStorage):
            from keyturn.stores.sql_throttle import SqlThrottleStorage

            sql = SqlThrottleStorage(storage.engine, clock=self.clock)
            return LoginThrottle(sql, self.settings, self.clock)
        return LoginThrottle(LimitsMemoryStorage(), self.settings, SystemClock())

    @property
    def sessions(self) -> SessionManager:
        """Server-side browser sessions."""
        if self._sessions is None:
            storage = self.storage
            self._sessions = SessionManager(
                storage.sessions, storage.users, self.settings, self.clock
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
            )
        return self._auth

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
