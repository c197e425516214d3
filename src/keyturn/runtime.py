"""The composition root: one :class:`Keyturn` object owns settings, clock,
stores and services, so the server, the CLI and host applications build the
same thing the same way."""

from __future__ import annotations

from types import TracebackType

from keyturn.accounts import Accounts
from keyturn.clock import Clock, SystemClock
from keyturn.passwords import PasswordHasher, PasswordPolicy
from keyturn.settings import Settings
from keyturn.stores.base import Storage


class Keyturn:
    """Everything one keyturn instance needs, wired together.

    Use as ``async with Keyturn(settings) as kt: ...`` or call :meth:`start` and
    :meth:`close`. Pass ``storage``, ``clock`` or ``hasher`` to replace the
    defaults (tests use a memory store, a frozen clock and a cheap hasher).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        storage: Storage | None = None,
        clock: Clock | None = None,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.hasher = hasher or PasswordHasher.from_settings(settings)
        self.policy = PasswordPolicy(min_length=settings.min_password_length)
        self._storage = storage
        self._owns_storage = storage is None
        self._accounts: Accounts | None = None

    async def start(self, *, migrate: bool | None = None) -> None:
        """Open the stores (migrating a SQLite file unless ``migrate=False``).

        Raises:
            DatabaseNotMigrated: a PostgreSQL schema is behind and ``migrate`` is not True.
            StoreUnavailable: the database cannot be reached.
        """
        if self._storage is None:
            from keyturn.stores.factory import open_storage

            self._storage = await open_storage(self.settings, migrate=migrate)

    async def close(self) -> None:
        """Close the stores this object opened."""
        if self._storage is not None and self._owns_storage:
            await self._storage.close()
            self._storage = None

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
