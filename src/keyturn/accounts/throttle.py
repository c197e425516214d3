"""Sign-in throttling: per account and per client address (SPEC "Accounts, throttling").

Only failed sign-ins count. After ``login_max_account_failures`` failures for
one account (from any address) or ``login_max_client_failures`` failures from
one client address within ``login_failure_window`` seconds, every further
attempt, even with the right password, is refused with
:class:`~keyturn.errors.TooManyAttempts` until the window passes. A success
clears the account's count (not the client's, or a stuffing client could reset
its own count with one account it controls).

Counting is done by the ``limits`` library's fixed-window strategy over any
``limits.aio.storage.Storage``: its in-process ``MemoryStorage`` for a single
process, :class:`~keyturn.stores.sql.throttle.SqlThrottleStorage` on the
database otherwise (shared by every worker and host, and kept across restarts).
A window starts at the first failure and lasts ``login_failure_window``.

Storage keys never hold an e-mail address or an IP address: both are SHA-256
hashed before they become part of a key.

An IPv6 client is counted by its ``throttle_ipv6_prefix`` network (a /64 by
default), since one subscriber usually holds a whole /64 and could otherwise take
a fresh address for every guess; IPv4 (and IPv4-mapped IPv6) by its address
(:func:`~keyturn.accounts.addresses.client_bucket`, #10 item 7).
"""

from __future__ import annotations

import contextlib
import hashlib

from limits import RateLimitItemPerSecond
from limits.aio.storage import Storage as LimitsStorage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError

from keyturn.accounts.addresses import client_bucket
from keyturn.accounts.emails import email_lookup_key
from keyturn.clock import Clock
from keyturn.errors import StoreUnavailable, TooManyAttempts
from keyturn.settings import Settings

__all__ = ["LoginThrottle", "throttle_key"]


def throttle_key(email: str) -> str:
    """The throttle identity of an account: the key the account lookup uses
    (:func:`keyturn.accounts.emails.email_lookup_key`), so every spelling that finds one
    account shares one count (#10 item 1).

    Whatever was typed counts, whether or not such an account exists, so the
    throttle reveals nothing about which accounts exist.
    """
    return email_lookup_key(email)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


class LoginThrottle:
    """Counts failed sign-ins and refuses attempts over the limits.

    The protocol for one sign-in attempt is ``check`` (before any password
    hashing), then ``record_failure`` or ``record_success``.

    ``check`` *reserves* one attempt against the account (an atomic increment),
    so that concurrent attempts cannot all slip past a count of 9: at most
    ``login_max_account_failures`` passwords are ever verified per account and
    window. ``record_success`` gives the reservation back by clearing the
    account's count; ``record_failure`` keeps it and counts the failure against
    the client address; ``release`` gives it back for an attempt that ended in
    neither (the account store was down while the throttle store, e.g. Redis,
    was up), since only failed sign-ins count.

    Args:
        storage: a ``limits`` async storage.
        settings: supplies the limits and the window.
        clock: the clock ``storage`` counts time with, used to turn the window's
            reset time into ``retry_after`` seconds: the storage's own ``clock``
            for keyturn's SQL and Redis storages, the system clock for ``limits``'
            own storages (the composition root picks it).
    """

    def __init__(
        self,
        storage: LimitsStorage,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self._limiter = FixedWindowRateLimiter(storage)
        self._ipv6_prefix = settings.throttle_ipv6_prefix
        window = settings.login_failure_window
        self._account_limit = RateLimitItemPerSecond(
            settings.login_max_account_failures, window, namespace="keyturn-login-account"
        )
        self._client_limit = RateLimitItemPerSecond(
            settings.login_max_client_failures, window, namespace="keyturn-login-client"
        )

    async def check(self, account_key: str, client: str) -> None:
        """Refuse the attempt if the client or the account is over its limit,
        otherwise reserve one attempt against the account (see the class doc).

        Raises:
            TooManyAttempts: over a limit; ``retry_after`` is the number of seconds
                until that window passes.
            StoreUnavailable: the throttle store cannot be reached (we fail closed).
        """
        account_id, client_id = _digest(account_key), self._client_id(client)
        try:
            if not await self._limiter.test(self._client_limit, client_id):
                raise TooManyAttempts(await self._retry_after(self._client_limit, client_id))
            if not await self._limiter.hit(self._account_limit, account_id):
                raise TooManyAttempts(await self._retry_after(self._account_limit, account_id))
        except TooManyAttempts:
            raise
        except Exception as exc:
            raise self._unavailable(exc) from exc

    async def record_failure(self, account_key: str, client: str) -> None:
        """Count a failed sign-in against the client address (the account's
        count was taken by :meth:`check`).

        Raises:
            StoreUnavailable: the throttle store cannot be reached.
        """
        del account_key  # counted by check(); kept in the signature for clarity at call sites
        try:
            await self._limiter.hit(self._client_limit, self._client_id(client))
        except Exception as exc:
            raise self._unavailable(exc) from exc

    async def record_success(self, account_key: str) -> None:
        """Clear the account's count after a successful sign-in.

        Raises:
            StoreUnavailable: the throttle store cannot be reached.
        """
        try:
            await self._limiter.clear(self._account_limit, _digest(account_key))
        except Exception as exc:
            raise self._unavailable(exc) from exc

    async def release(self, account_key: str) -> None:
        """Give back the attempt :meth:`check` reserved, for a sign-in that ended
        in neither success nor failure (a store outage while verifying): only
        failed sign-ins count. Best effort: when the throttle store is down too,
        the reservation stays, which errs on the side of refusing."""
        item = self._account_limit
        key = item.key_for(_digest(account_key))
        with contextlib.suppress(Exception):
            if await self.storage.incr(key, item.get_expiry(), amount=-1) < 0:
                await self.storage.clear(key)  # the window ended in between

    async def sweep(self) -> int:
        """Delete expired counters where the storage needs it (the SQL table does;
        ``limits``' own storages expire keys by themselves). Returns how many.

        Raises:
            StoreUnavailable: the throttle store cannot be reached.
        """
        purge = getattr(self.storage, "purge_expired", None)
        if purge is None:
            return 0
        try:
            return int(await purge())
        except Exception as exc:
            raise self._unavailable(exc) from exc

    def _client_id(self, client: str) -> str:
        return _digest(client_bucket(client, self._ipv6_prefix))

    async def _retry_after(self, item: RateLimitItemPerSecond, identifier: str) -> int:
        stats = await self._limiter.get_window_stats(item, identifier)
        remaining = stats.reset_time - self.clock.now()
        # Never more than one window (a clock mismatch must not lock anyone out
        # for longer), never less than a second.
        return max(1, min(item.get_expiry(), int(remaining + 0.999)))

    def _unavailable(self, exc: Exception) -> StoreUnavailable:
        if isinstance(exc, StoreUnavailable):
            return exc
        if isinstance(exc, StorageError):
            return StoreUnavailable("the sign-in throttle store is unavailable")
        return StoreUnavailable(f"the sign-in throttle store failed: {type(exc).__name__}")
