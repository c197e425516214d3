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


class Storage(Protocol):
    """The bundle of stores one keyturn instance works with."""

    users: UserStore

    async def ping(self) -> None:
        """Check every backend answers.

        Raises:
            StoreUnavailable: a backend is unreachable.
        """
        ...

    async def close(self) -> None:
        """Release connections and pools."""
        ...
