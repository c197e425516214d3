"""The storage contract: one Protocol per store, and the records they hold.

Every store has a memory implementation (the reference, :mod:`.memory`) and a
SQLAlchemy implementation serving SQLite and PostgreSQL (:mod:`.sql`); Redis
implementations of the fast-changing stores sit beside them. One contract suite
(``tests/contracts``) runs every implementation, real servers included.

Conventions every implementation keeps:
- times are POSIX seconds (float, UTC) supplied by the caller's clock;
- anything that grants access (session IDs, refresh tokens, client secrets) is
  stored only as a hash, computed by the caller: stores never see the secret;
- a store that cannot reach its backend raises :class:`~keyturn.errors.StoreUnavailable`;
- methods are atomic on their own; no caller-visible transactions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


def normalize_email_key(email: str) -> str:
    """The key that makes e-mail addresses unique case-insensitively."""
    return email.strip().casefold()


@dataclass(frozen=True, slots=True)
class User:
    """An account. ``email`` is shown as entered (validated, trimmed);
    ``email_key`` is its case-folded form and is unique."""

    id: str
    email: str
    password_hash: str
    created_at: float
    roles: tuple[str, ...] = ()
    disabled: bool = False
    email_key: str = field(default="")

    def __post_init__(self) -> None:
        if not self.email_key:
            object.__setattr__(self, "email_key", normalize_email_key(self.email))


class UserStore(Protocol):
    """Accounts, keyed by id and by case-folded e-mail."""

    async def add(self, user: User) -> None:
        """Store a new account.

        Raises:
            EmailTaken: an account with the same ``email_key`` exists.
        """
        ...

    async def get(self, user_id: str) -> User | None:
        """The account with this id, or None."""
        ...

    async def get_by_email(self, email: str) -> User | None:
        """The account whose e-mail matches ``email`` case-insensitively, or None."""
        ...

    async def list(self) -> list[User]:
        """Every account, oldest first."""
        ...

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        """Replace the stored hash (password change or parameter upgrade).

        Raises:
            UserNotFound: no account has this id.
        """
        ...

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        """Disable or enable an account.

        Raises:
            UserNotFound: no account has this id.
        """
        ...


@dataclass(frozen=True, slots=True)
class Session:
    """One browser sign-in, as stored.

    The secret session ID never reaches the store: ``id_hash`` (SHA-256 hex of
    it) is the key, so a dump of the store grants nothing. ``handle`` is a
    separate public random id for listing and revoking the sign-in
    (``GET /auth/sessions``, ``DELETE /auth/sessions/{id}``); it stays the same
    when the secret rotates.
    """

    id_hash: str
    handle: str
    user_id: str
    created_at: float
    last_seen_at: float
    idle_timeout: int
    expires_at: float
    auth_time: float
    remember: bool = False
    ip: str | None = None
    user_agent: str | None = None

    def is_expired(self, now: float) -> bool:
        """True once the absolute lifetime or the idle timeout has run out at ``now``."""
        return now >= self.expires_at or now >= self.last_seen_at + self.idle_timeout


class SessionStore(Protocol):
    """Browser sessions keyed by ``id_hash``, indexed by user and by handle.

    Expiry is data (``expires_at``, ``last_seen_at + idle_timeout``), so a TTL
    store such as Redis can drop keys by itself; :meth:`get` may still return an
    expired record and the caller decides. Every method is atomic.
    """

    async def create(self, session: Session, *, max_per_user: int) -> list[Session]:
        """Store a new session and enforce the per-user cap in the same step.

        If the user then has more than ``max_per_user`` live sessions (not
        expired at ``session.last_seen_at``, which is "now" for a new or rotated
        session), the oldest ones (by ``created_at``) other than the new one are
        deleted until the cap holds.

        Returns:
            The evicted sessions, oldest first (usually empty).

        Raises:
            UserNotFound: the SQL store found no account ``session.user_id``.
        """
        ...

    async def get(self, id_hash: str) -> Session | None:
        """The session with this hash, expired or not, or None."""
        ...

    async def get_by_handle(self, handle: str) -> Session | None:
        """The session with this public handle, or None."""
        ...

    async def touch(self, id_hash: str, last_seen_at: float) -> None:
        """Record activity; ``last_seen_at`` only ever moves forward.

        A missing session is not an error (it may have just been revoked).
        """
        ...

    async def delete(self, id_hash: str) -> Session | None:
        """Delete one session and return it, or None if it was not there."""
        ...

    async def delete_for_user(
        self, user_id: str, *, keep_id_hash: str | None = None
    ) -> list[Session]:
        """Delete every session of a user except ``keep_id_hash``.

        Returns:
            The deleted sessions, oldest first.
        """
        ...

    async def list_for_user(self, user_id: str) -> list[Session]:
        """Every stored session of a user, expired ones included, oldest first."""
        ...

    async def list_all(self) -> list[Session]:
        """Every stored session of every user, oldest first (operator listings)."""
        ...

    async def sweep(self, now: float) -> int:
        """Delete every session past its absolute lifetime or idle timeout at ``now``.

        Returns:
            How many were deleted.
        """
        ...


class Storage(Protocol):
    """The bundle of stores one keyturn instance works with."""

    users: UserStore
    sessions: SessionStore

    async def ping(self) -> None:
        """Check every backend answers.

        Raises:
            StoreUnavailable: a backend is unreachable.
        """
        ...

    async def close(self) -> None:
        """Release connections and pools."""
        ...
