"""In-process reference implementations of every store.

Used by unit tests and as the executable definition of each Protocol's
behaviour; not shared between processes, so never for production.
"""

from __future__ import annotations

import dataclasses

from keyturn.errors import EmailTaken, UserNotFound
from keyturn.stores.base import User, normalize_email_key


class MemoryUserStore:
    """Accounts in two dicts."""

    def __init__(self) -> None:
        self._by_id: dict[str, User] = {}
        self._id_by_email: dict[str, str] = {}

    async def add(self, user: User) -> None:
        if user.email_key in self._id_by_email:
            raise EmailTaken()
        self._by_id[user.id] = user
        self._id_by_email[user.email_key] = user.id

    async def get(self, user_id: str) -> User | None:
        return self._by_id.get(user_id)

    async def get_by_email(self, email: str) -> User | None:
        user_id = self._id_by_email.get(normalize_email_key(email))
        return self._by_id.get(user_id) if user_id else None

    async def list(self) -> list[User]:
        return sorted(self._by_id.values(), key=lambda user: (user.created_at, user.email_key))

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self._replace(user_id, password_hash=password_hash)

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        self._replace(user_id, disabled=disabled)

    def _replace(self, user_id: str, **changes: object) -> None:
        user = self._by_id.get(user_id)
        if user is None:
            raise UserNotFound()
        self._by_id[user_id] = dataclasses.replace(user, **changes)  # type: ignore[arg-type]


class MemoryStorage:
    """Every store in memory."""

    def __init__(self) -> None:
        self.users = MemoryUserStore()

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
