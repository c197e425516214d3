"""The storage contract: one Protocol per store (the records are :mod:`.records`).

(Over 300 lines: the whole storage contract in one place (STYLE habit 2);
most lines are the docstrings every implementation is held to.)

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

import builtins
from typing import TYPE_CHECKING, Protocol

from keyturn.stores.records import (
    Client,
    RefreshFamily,
    RefreshToken,
    Revocation,
    Session,
    User,
)

if TYPE_CHECKING:
    from limits.aio.storage import Storage as LimitsStorage

    from keyturn.clock import Clock
    from keyturn.keys.records import SigningKey

__all__ = [
    "ClientStore",
    "KeyStore",
    "RefreshStore",
    "RevocationStore",
    "SessionStore",
    "Storage",
    "UserStore",
]


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

    # --- mail (wave 2, #14) ---
    async def set_email_verified(self, user_id: str, verified: bool) -> None:
        """Record whether the account's address is verified.

        Raises:
            UserNotFound: no account has this id.
        """
        ...

    async def set_email(self, user_id: str, email: str, *, verified: bool) -> None:
        """Move the account to ``email`` (already validated), with its
        ``email_verified`` flag.

        Raises:
            UserNotFound: no account has this id.
            EmailTaken: another account has this address.
        """
        ...

    async def slowest_legacy_hashes(self) -> builtins.list[str]:
        """The most expensive stored hash of each imported format, at most one
        each: bcrypt (and Django's ``bcrypt$``-prefixed bcrypt) by cost, Django
        ``pbkdf2_sha256`` and ``pbkdf2_sha1`` by iterations. Empty when no
        account still has an imported hash.

        keyturn times a wrong password against them at start-up, so that every
        failed sign-in can be made to cost the slowest verification (#10 item 6).
        """
        ...


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


class KeyStore(Protocol):
    """Token signing keys (see :mod:`keyturn.keys.records`), keyed by ``kid``.

    ``SigningKey.private_key`` reaches the store already sealed by
    :class:`~keyturn.keys.encryption.KeyEncryptor` and comes back exactly as given:
    stores never see plaintext key material.
    """

    async def add(self, key: SigningKey) -> None:
        """Store a new key (its ``private_key`` already encrypted).

        Raises:
            AlreadyExists: a key with this ``kid`` exists.
        """
        ...

    async def list(self) -> list[SigningKey]:
        """Every stored key, newest (by ``created_at``, then ``kid``) first."""
        ...

    async def retire(self, kid: str, at: float) -> None:
        """Set ``retired_at`` to ``at`` unless the key is already retired earlier.

        A missing key is not an error.
        """
        ...

    async def delete_expired(self, before: float) -> int:
        """Delete every key retired before ``before`` (the caller picks a time long
        after its last token expired). Returns how many were deleted."""
        ...


class RefreshStore(Protocol):
    """Refresh families and their tokens (keyed by ``token_hash``)."""

    async def create_family(
        self,
        family: RefreshFamily,
        token: RefreshToken,
        *,
        max_per_user: int | None = None,
        idle_timeout: float | None = None,
    ) -> list[RefreshFamily]:
        """Store a new family and its first token, and enforce the per-user cap,
        in one step.

        With ``max_per_user``, if the user then has more than ``max_per_user``
        live families at ``family.created_at`` ("now" for a new family): not
        revoked, before their ``expires_at`` and, with ``idle_timeout``, used
        within the last ``idle_timeout`` seconds, the oldest ones (by
        ``created_at``) other than the new one are revoked, as
        :meth:`revoke_family` does, until the cap holds.

        Returns:
            The families this call revoked, as now stored, oldest first (usually
            empty; always empty without ``max_per_user``).

        Raises:
            UserNotFound: the SQL store found no account ``family.user_id``.
        """
        ...

    async def get_token(self, token_hash: str) -> tuple[RefreshToken, RefreshFamily] | None:
        """The token with this hash and its family, or None."""
        ...

    async def rotate(
        self,
        token_hash: str,
        successor: RefreshToken,
        *,
        now: float,
        grace_until: float | None,
        grace_payload: bytes | None,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> bool:
        """Mark ``token_hash`` used and store ``successor``, atomically.

        The conditional update ``used_at IS NULL`` (and the family not revoked)
        and the insert of the successor happen in one transaction, so of any
        number of concurrent callers, on any number of instances, exactly one
        gets True. The family's ``last_used_at`` (and ``ip``/``user_agent`` when
        given) are updated with it.

        Returns:
            True when this call rotated the token; False when it was already used,
            is unknown, or its family is revoked (nothing is written then).
        """
        ...

    async def clear_grace(self, token_hash: str) -> None:
        """Forget the kept successor response of a used token (window over)."""
        ...

    async def get_family(self, family_id: str) -> RefreshFamily | None:
        """The family with this handle, or None."""
        ...

    async def list_families(self, user_id: str) -> list[RefreshFamily]:
        """Every stored family of a user (revoked and expired ones included),
        oldest first."""
        ...

    async def revoke_family(self, family_id: str, now: float) -> RefreshFamily | None:
        """Revoke a family (keeping an earlier ``revoked_at``) and wipe the kept
        successor responses of its tokens.

        Returns:
            The family as now stored, or None when there is no such family.
        """
        ...

    async def revoke_for_user(self, user_id: str, now: float) -> list[RefreshFamily]:
        """Revoke every unrevoked family of a user, as :meth:`revoke_family` does.

        Returns:
            The families revoked by this call, oldest first.
        """
        ...

    async def revoke_for_sessions(self, session_ids: list[str], now: float) -> list[RefreshFamily]:
        """Revoke every unrevoked family opened from one of these browser
        sessions (``session_id``, the sessions' public handles), as
        :meth:`revoke_family` does: the families die with their session.

        Returns:
            The families revoked by this call.
        """
        ...

    async def sweep(self, now: float) -> int:
        """Delete families past their absolute cap (with their tokens) and tokens
        past their own expiry, and wipe kept responses whose window is over.

        Returns:
            How many families and tokens were deleted.
        """
        ...


class RevocationStore(Protocol):
    """An append-only log of revocations that every instance replicates."""

    async def add(self, entry: Revocation) -> Revocation:
        """Append an entry.

        Returns:
            The entry with its ``seq``.
        """
        ...

    async def changes(self, *, after_seq: int, since: float, now: float) -> list[Revocation]:
        """Entries with ``seq > after_seq`` or ``created_at >= since``, not expired
        at ``now``, in ``seq`` order. ``after_seq=0, since=inf`` loads everything live."""
        ...

    async def sweep(self, now: float) -> int:
        """Delete entries expired at ``now``; returns how many."""
        ...


class ClientStore(Protocol):
    """OAuth clients, keyed by ``id``."""

    async def add(self, client: Client) -> None:
        """Store a new client.

        Raises:
            AlreadyExists: a client with this id exists.
        """
        ...

    async def get(self, client_id: str) -> Client | None:
        """The client with this id, or None."""
        ...

    async def list(self) -> list[Client]:
        """Every client, oldest first."""
        ...

    async def remove(self, client_id: str) -> bool:
        """Delete the client with this id; whether there was one."""
        ...


class Storage(Protocol):
    """The bundle of stores one keyturn instance works with.

    It also answers the two questions the composition root
    (:class:`~keyturn.runtime.Keyturn`) would otherwise ask by type: whether what
    it holds outlives the process (:attr:`durable`), and where the throttles may
    count so that every process on it shares the counts (:meth:`throttle_storage`).
    """

    users: UserStore
    sessions: SessionStore
    keys: KeyStore
    refresh: RefreshStore
    revocations: RevocationStore
    clients: ClientStore
    #: Whether the stored data outlives the process. Signing keys in durable
    #: storage must be sealed with a key-encryption key the next process can
    #: read (:func:`keyturn.keys.encryption.kek_for`); keys in memory die with it.
    durable: bool

    def throttle_storage(self, clock: Clock) -> LimitsStorage | None:
        """A ``limits`` storage for the sign-in and registration throttles that
        every process on this storage shares, counting time with ``clock``;
        None when there is none (they count in process memory then)."""
        ...

    async def ping(self) -> None:
        """Check every backend answers.

        Raises:
            StoreUnavailable: a backend is unreachable.
        """
        ...

    async def close(self) -> None:
        """Release connections and pools."""
        ...
