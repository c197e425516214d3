"""Throttling of the requests that send mail: per typed address and per client.

A forgot-password request costs the account's owner a mail, so one address may
ask ``reset_max_per_address`` times and one client ``reset_max_per_client``
times in ``reset_window`` seconds. The address is counted as typed (case-folded):
an unknown address is counted exactly like a known one, so a 429 says nothing
about whether an account exists. Keys are SHA-256 digests, never addresses.
"""

from __future__ import annotations

from limits import RateLimitItemPerSecond
from limits.aio.storage import Storage as LimitsStorage
from limits.aio.strategies import FixedWindowRateLimiter

from keyturn.accounts.addresses import client_bucket
from keyturn.accounts.throttle import _digest
from keyturn.clock import Clock
from keyturn.errors import StoreUnavailable, TooManyAttempts
from keyturn.settings import Settings

__all__ = ["MailThrottle"]


class MailThrottle:
    """Counts mail-sending requests per address and per client address."""

    def __init__(self, storage: LimitsStorage, settings: Settings, clock: Clock) -> None:
        self._limiter = FixedWindowRateLimiter(storage)
        self._clock = clock
        self._ipv6_prefix = settings.throttle_ipv6_prefix
        window = settings.reset_window
        self._address_limit = RateLimitItemPerSecond(
            settings.reset_max_per_address, window, namespace="keyturn-mail-address"
        )
        self._client_limit = RateLimitItemPerSecond(
            settings.reset_max_per_client, window, namespace="keyturn-mail-client"
        )

    async def hit(self, address: str, client: str) -> None:
        """Count one request for ``address`` from ``client``, or refuse it.

        Raises:
            TooManyAttempts: over either limit (``retry_after`` seconds to wait).
            StoreUnavailable: the throttle store cannot be reached (fail closed).
        """
        address_id = _digest(address.strip().casefold())
        client_id = _digest(client_bucket(client, self._ipv6_prefix))
        try:
            if not await self._limiter.hit(self._client_limit, client_id):
                raise TooManyAttempts(await self._retry_after(self._client_limit, client_id))
            if not await self._limiter.hit(self._address_limit, address_id):
                raise TooManyAttempts(await self._retry_after(self._address_limit, address_id))
        except (TooManyAttempts, StoreUnavailable):
            raise
        except Exception as exc:
            raise StoreUnavailable(f"the mail throttle failed: {type(exc).__name__}") from exc

    async def _retry_after(self, item: RateLimitItemPerSecond, identifier: str) -> int:
        stats = await self._limiter.get_window_stats(item, identifier)
        remaining = stats.reset_time - self._clock.now()
        return max(1, min(item.get_expiry(), int(remaining + 0.999)))
