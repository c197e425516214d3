"""The memory account, session and key stores, and the bundle of every memory store.

Used by unit tests and as the executable definition of each Protocol's
behaviour; not shared between processes, so never for production.
"""

from __future__ import annotations

import builtins
import dataclasses
from typing import TYPE_CHECKING

from keyturn.accounts.legacy_hashes import legacy_cost
from keyturn.clock import Clock
from keyturn.errors import AlreadyExists, EmailTaken, UserNotFound
from keyturn.keys.records import SigningKey
from keyturn.stores.memory.tokens import (
    MemoryClientStore,
    MemoryRefreshStore,
    MemoryRevocationStore,
)
from keyturn.stores.protocols import (
    ClientStore,
    KeyStore,
    RefreshStore,
    RevocationStore,
    SessionStore,
    UserStore,
)
from keyturn.stores.records import Session, User, normalize_email_key

if TYPE_CHECKING:
    from limits.aio.storage import Storage as LimitsStorage
from keyturn.stores.wave2 import Wave2Stores, memory_wave2_stores  # wave 2


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

    async def set_email_verified(self, user_id: str, verified: bool) -> None:
        self._replace(user_id, email_verified=verified)

    async def set_email(self, user_id: str, email: str, *, verified: bool) -> None:
        user = self._by_id.get(user_id)
        if user is None:
            raise UserNotFound()
        key = normalize_email_key(email)
        if self._id_by_email.get(key, user_id) != user_id:
            raise EmailTaken()
        del self._id_by_email[user.email_key]
        self._id_by_email[key] = user_id
        self._by_id[user_id] = dataclasses.replace(
            user, email=email, email_key=key, email_verified=verified
        )

    async def slowest_legacy_hashes(self) -> builtins.list[str]:
        slowest: dict[str, tuple[int, str]] = {}
        for user in self._by_id.values():
            cost = legacy_cost(user.password_hash)
            if cost is None:
                continue
            kind = "django-bcrypt" if user.password_hash.startswith("bcrypt$") else cost[0]
            if kind not in slowest or cost[1] > slowest[kind][0]:
                slowest[kind] = (cost[1], user.password_hash)
        return [stored for _, stored in slowest.values()]

    def _replace(self, user_id: str, **changes: object) -> None:
        user = self._by_id.get(user_id)
        if user is None:
            raise UserNotFound()
        self._by_id[user_id] = dataclasses.replace(user, **changes)  # type: ignore[arg-type]


def _age_order(session: Session) -> tuple[float, str]:
    return (session.created_at, session.id_hash)


class MemorySessionStore:
    """Sessions in a dict, with a per-user index and a handle index.

    Each method runs without awaiting, so it is atomic under asyncio.
    """

    def __init__(self) -> None:
        self._by_hash: dict[str, Session] = {}
        self._hash_by_handle: dict[str, str] = {}
        self._hashes_by_user: dict[str, set[str]] = {}

    async def create(self, session: Session, *, max_per_user: int) -> list[Session]:
        self._by_hash[session.id_hash] = session
        self._hash_by_handle[session.handle] = session.id_hash
        self._hashes_by_user.setdefault(session.user_id, set()).add(session.id_hash)
        others = [
            other
            for other in self._of_user(session.user_id)
            if other.id_hash != session.id_hash and not other.is_expired(session.last_seen_at)
        ]
        excess = len(others) + 1 - max_per_user
        evicted = others[: max(excess, 0)]
        for old in evicted:
            self._remove(old.id_hash)
        return evicted

    async def get(self, id_hash: str) -> Session | None:
        return self._by_hash.get(id_hash)

    async def get_by_handle(self, handle: str) -> Session | None:
        id_hash = self._hash_by_handle.get(handle)
        return self._by_hash.get(id_hash) if id_hash else None

    async def touch(self, id_hash: str, last_seen_at: float) -> None:
        session = self._by_hash.get(id_hash)
        if session is not None and last_seen_at > session.last_seen_at:
            self._by_hash[id_hash] = dataclasses.replace(session, last_seen_at=last_seen_at)

    async def delete(self, id_hash: str) -> Session | None:
        return self._remove(id_hash)

    async def delete_for_user(
        self, user_id: str, *, keep_id_hash: str | None = None
    ) -> list[Session]:
        doomed = [s for s in self._of_user(user_id) if s.id_hash != keep_id_hash]
        for session in doomed:
            self._remove(session.id_hash)
        return doomed

    async def list_for_user(self, user_id: str) -> list[Session]:
        return self._of_user(user_id)

    async def list_all(self) -> list[Session]:
        return sorted(self._by_hash.values(), key=_age_order)

    async def sweep(self, now: float) -> int:
        expired = [s.id_hash for s in self._by_hash.values() if s.is_expired(now)]
        for id_hash in expired:
            self._remove(id_hash)
        return len(expired)

    def _of_user(self, user_id: str) -> list[Session]:
        hashes = self._hashes_by_user.get(user_id, ())
        return sorted((self._by_hash[h] for h in hashes), key=_age_order)

    def _remove(self, id_hash: str) -> Session | None:
        session = self._by_hash.pop(id_hash, None)
        if session is None:
            return None
        self._hash_by_handle.pop(session.handle, None)
        hashes = self._hashes_by_user.get(session.user_id)
        if hashes is not None:
            hashes.discard(id_hash)
            if not hashes:
                del self._hashes_by_user[session.user_id]
        return session


class MemoryKeyStore:
    """Signing keys in a dict keyed by ``kid``."""

    def __init__(self) -> None:
        self._by_kid: dict[str, SigningKey] = {}

    async def add(self, key: SigningKey) -> None:
        if key.kid in self._by_kid:
            raise AlreadyExists(f"signing key {key.kid!r} already exists")
        self._by_kid[key.kid] = key

    async def list(self) -> list[SigningKey]:
        return sorted(self._by_kid.values(), key=lambda k: (k.created_at, k.kid), reverse=True)

    async def retire(self, kid: str, at: float) -> None:
        key = self._by_kid.get(kid)
        if key is not None:
            self._by_kid[kid] = key.retire(at)

    async def delete_expired(self, before: float) -> int:
        doomed = [
            kid
            for kid, key in self._by_kid.items()
            if key.retired_at is not None and key.retired_at < before
        ]
        for kid in doomed:
            del self._by_kid[kid]
        return len(doomed)


class MemoryStorage:
    """Every store in memory: nothing outlives the process or is shared."""

    durable = False

    def __init__(self) -> None:
        self.users: UserStore = MemoryUserStore()
        self.sessions: SessionStore = MemorySessionStore()
        self.keys: KeyStore = MemoryKeyStore()
        self.refresh: RefreshStore = MemoryRefreshStore()
        self.revocations: RevocationStore = MemoryRevocationStore()
        self.clients: ClientStore = MemoryClientStore()
        # --- wave 2: outbox, mfa, oauth (keyturn.stores.wave2) ---
        self.wave2: Wave2Stores = memory_wave2_stores()

    def throttle_storage(self, clock: Clock) -> LimitsStorage | None:
        return None

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
