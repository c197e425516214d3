"""Changes over Redis (or Valkey) pub/sub on one channel.

Two connections per instance: one subscribed (listening), one for ``PUBLISH``.
Redis delivers a message to every connection subscribed when it is published,
at most once; a subscriber that is disconnected at that moment never sees it.
So the listener proves the channel alive: it sends ``PING`` on the subscribed
connection every ``staleness_bound / 4`` seconds, and the ``PONG`` (which comes
back in order with the messages) verifies that everything published before the
``PING`` was delivered. No answer within ``staleness_bound / 2``, or any error,
ends the epoch (:mod:`keyturn.fanout.buses.liveness`); the listener then reconnects
with exponential backoff (50 ms doubling to 2 s, jittered) and a new epoch
begins with the subscription.

In Redis Cluster, classic ``PUBLISH`` reaches subscribers on every node, so the
URL of any one node works.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from keyturn.clock import Clock
from keyturn.errors import StoreUnavailable
from keyturn.fanout.buses.liveness import ListeningBus, Reconnector

__all__ = ["DEFAULT_CHANNEL", "RedisBus"]


DEFAULT_CHANNEL = "keyturn:changes"
_CONNECT_TIMEOUT = 2.0


class ChannelLost(ConnectionError):
    """The subscribed connection stopped answering heartbeats."""


class RedisBus(ListeningBus):
    """A :class:`~keyturn.fanout.changes.ChangeBus` over Redis pub/sub.

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL.
        bound: ``staleness_bound``; heartbeats every quarter of it, the channel
            counts as lost after half of it without an answer.
        clock: POSIX time (``alive_since``).
        timer: times heartbeats (monotonic when None).
        channel: the pub/sub channel every instance of one deployment shares.
    """

    name = "redis"
    max_message_bytes = 512 * 1024

    def __init__(
        self,
        url: str,
        *,
        bound: float,
        clock: Clock,
        timer: Clock | None = None,
        channel: str = DEFAULT_CHANNEL,
    ) -> None:
        super().__init__(bound=bound, clock=clock, timer=timer)
        self.url = url
        self.channel = channel
        self._publisher: Any = None
        self._reconnector = Reconnector("redis", self._liveness)

    def _client(self, **options: Any) -> Any:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # No silent reconnects inside redis-py: a reconnection must start a new epoch.
        return Redis.from_url(
            self.url,
            socket_connect_timeout=_CONNECT_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
            **options,
        )

    async def listen(self) -> None:
        await self._reconnector.run(self._listen)

    async def publish(self, message: str) -> None:
        """Raises:
        StoreUnavailable: Redis cannot be reached (redis-py's own errors stay inside)."""
        if self._publisher is None:
            self._publisher = self._client(socket_timeout=1.0)
        try:
            await self._publisher.publish(self.channel, message)
        except BaseException as exc:  # a timeout cancels mid-reply: never reuse that connection
            publisher, self._publisher = self._publisher, None
            with contextlib.suppress(Exception):
                await publisher.aclose()
            if isinstance(exc, Exception):
                raise StoreUnavailable(
                    f"the Redis change channel failed: {type(exc).__name__}"
                ) from exc
            raise

    async def _listen(self) -> None:
        client = self._client(socket_timeout=None)
        pubsub = client.pubsub()
        try:
            async with asyncio.timeout(_CONNECT_TIMEOUT):
                await pubsub.subscribe(self.channel)
            ping_sent: float | None = None
            next_ping = self._timer.now() + self.interval
            while True:
                now = self._timer.now()
                if ping_sent is None and now >= next_ping:
                    ping_sent = now
                    await pubsub.ping()
                elif ping_sent is not None and now - ping_sent > self._liveness.timeout:
                    raise ChannelLost("no answer to PING")
                message = await pubsub.get_message(timeout=self.interval / 2)
                if message is None:
                    continue
                kind = message["type"]
                if kind == "message":
                    data = message["data"]
                    self.deliver(data.decode() if isinstance(data, bytes) else data)
                elif kind == "pong" and ping_sent is not None:
                    if self._liveness.verified(ping_sent):
                        self.connected()
                    next_ping = ping_sent + self.interval
                    ping_sent = None
                elif kind == "subscribe":
                    # A (re)subscription: what was published before it is lost to us.
                    self._liveness.restart()
                    self._reconnector.up()
                    self.connected()
        finally:
            self._liveness.lost()
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()

    async def close(self) -> None:
        await super().close()
        if self._publisher is not None:
            with contextlib.suppress(Exception):
                await self._publisher.aclose()
            self._publisher = None
