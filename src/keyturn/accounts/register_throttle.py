"""Registration throttling: per client address and for the whole server (#10 item 3).

Registration is an oracle (``409 email_taken`` says an address has an account) and
a CPU amplifier (each new account costs one argon2 hash). Every attempt counts,
whatever it answers: at most ``register_max_per_client`` attempts from one client
address and ``register_max_global`` attempts in all within ``register_window``
seconds; past either, :class:`~keyturn.errors.TooManyAttempts` until the window
passes.

It counts in the same ``limits`` storage as the sign-in throttle
(:class:`~keyturn.accounts.throttle.LoginThrottle`), under its own namespaces, so the
counts are shared by every worker and host the same way. Client addresses are
SHA-256 hashed before they become part of a key; IPv6 clients are counted by
their ``throttle_ipv6_prefix`` network (:func:`~keyturn.accounts.addresses.client_bucket`).
"""

from __future__ import annotations

from limits import RateLimitItemPerSecond
from limits.aio.storage import Storage as LimitsStorage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError

from keyturn.accounts.addresses import client_bucket
from keyturn.accounts.throttle import _digest
from keyturn.clock import Clock
from keyturn.errors import StoreUnavailable, TooManyAttempts
from keyturn.settings import Settings

__all__ = ["RegistrationThrottle"]

#: The one identifier of the server-wide count.
_EVERYONE = "all"


class RegistrationThrottle:
    """Counts registration attempts per client address and in all.

    Args:
        storage: a ``limits`` async storage (the sign-in throttle's).
        settings: ``register_max_per_client``, ``register_max_global``, ``register_window``.
        clock: the clock ``storage`` counts time with (see
            :class:`~keyturn.accounts.throttle.LoginThrottle`).
    """

    def __init__(self, storage: LimitsStorage, settings: Settings, clock: Clock) -> None:
        self.storage = storage
        self.clock = clock
        self._limiter = FixedWindowRateLimiter(storage)
        self._ipv6_prefix = settings.throttle_ipv6_prefix
        window = settings.register_window
        self._client_limit = RateLimitItemPerSecond(
            settings.register_max_per_client, window, namespace="keyturn-register-client"
        )
        self._global_limit = RateLimitItemPerSecond(
            settings.register_max_global, window, namespace="keyturn-register-all"
        )

    async def hit(self, client: str) -> None:
        """Count one registration attempt from ``client``, or refuse it.

        A client over its own limit is refused without touching the global count,
        so one noisy client cannot use up everyone's registrations by itself.

        Raises:
            TooManyAttempts: over the per-client or the global limit;
                ``retry_after`` is the seconds until that window passes.
            StoreUnavailable: the throttle store cannot be reached (we fail closed).
        """
        client_id = _digest(client_bucket(client, self._ipv6_prefix))
        try:
            if not await self._limiter.test(self._client_limit, client_id):
                raise TooManyAttempts(await self._retry_after(self._client_limit, client_id))
            if not await self._limiter.hit(self._global_limit, _EVERYONE):
                raise TooManyAttempts(await self._retry_after(self._global_limit, _EVERYONE))
            await self._limiter.hit(self._client_limit, client_id)
        except TooManyAttempts:
            raise
        except StoreUnavailable:
            raise
        except StorageError as exc:
            raise StoreUnavailable("the registration throttle store is unavailable") from exc
        except Exception as exc:
            raise StoreUnavailable(
                f"the registration throttle store failed: {type(exc).__name__}"
            ) from exc

    async def _retry_after(self, item: RateLimitItemPerSecond, identifier: str) -> int:
        stats = await self._limiter.get_window_stats(item, identifier)
        remaining = stats.reset_time - self.clock.now()
        return max(1, min(item.get_expiry(), int(remaining + 0.999)))
