"""Changes over Redis (or Valkey) pub/sub on one channel.

Two connections per instance: one subscribed (listening), one for ``PUBLISH``.
Redis delivers a message to every connection subscribed when it is published,
at most once; a subscriber that is disconnected at that moment never sees it.
So the listener proves the channel alive: it sends ``PING`` on the subscribed
connection every ``staleness_bound / 4`` seconds, and the ``PONG`` (which comes
back in order with the messages) verifies that everything published before the
``PING`` was delivered. No answer within ``staleness_bound / 2``, or any error,
ends the epoch (:mod:`keyturn.buses.liveness`); the listener then reconnects
with exponential backoff (50 ms doubling to 2 s, jittered) and a new epoch
begins with the subscription.

In Redis Cluster, classic ``PUBLISH`` reaches subscribers on every node, so the
URL of any one node works.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from keyturn.buses.liveness import Liveness, Reconnector

__all__ = ["DEFAULT_CHANNEL", "RedisBus"]


DEFAULT_CHANNEL = "keyturn:changes"
_CONNECT_TIMEOUT = 2.0


class ChannelLost(ConnectionError):
    """The subscribed connection stopped answering heartbeats."""


class RedisBus:
    """A :class:`~keyturn.fanout.ChangeBus` over Redis pub/sub.

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL.
        bound: ``staleness_bound``; heartbeats every quarter of it, the channel
            counts as lost after half of it without an answer.
        channel: the pub/sub channel every instance of one deployment shares.
    """

    name = "redis"
    max_message_bytes = 512 * 1024

    def __init__(self, url: str, *, bound: float, channel: str = DEFAULT_CHANNEL) -> None:
        self.url = url
        self.channel = channel
        self.interval = bound / 4
        self._liveness = Liveness(bound / 2)
        self._deliver: Callable[[str], None] | None = None
        self._connected: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._publisher: Any = None
        self._reconnector = Reconnector("redis", self._liveness)

    @property
    def epoch(self) -> int | None:
        return self._liveness.epoch

    @property
    def alive_since(self) -> float | None:
        return self._liveness.alive_since

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

    async def start(self, deliver: Callable[[str], None], connected: Callable[[], None]) -> None:
        self._deliver, self._connected = deliver, connected
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._reconnector.run(self._listen), name="keyturn-fanout-redis"
            )

    async def publish(self, message: str) -> None:
        if self._publisher is None:
            self._publisher = self._client(socket_timeout=1.0)
        try:
            await self._publisher.publish(self.channel, message)
        except BaseException:  # a timeout cancels mid-reply: never reuse that connection
            publisher, self._publisher = self._publisher, None
            with contextlib.suppress(Exception):
                await publisher.aclose()
            raise

    async def _listen(self) -> None:
        client = self._client(socket_timeout=None)
        pubsub = client.pubsub()
        try:
            async with asyncio.timeout(_CONNECT_TIMEOUT):
                await pubsub.subscribe(self.channel)
            ping_sent: float | None = None
            next_ping = time.monotonic() + self.interval
            while True:
                now = time.monotonic()
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
                    if self._deliver is not None:
                        self._deliver(data.decode() if isinstance(data, bytes) else data)
                elif kind == "pong" and ping_sent is not None:
                    if self._liveness.verified(ping_sent) and self._connected is not None:
                        self._connected()
                    next_ping = ping_sent + self.interval
                    ping_sent = None
                elif kind == "subscribe":
                    # A (re)subscription: what was published before it is lost to us.
                    self._liveness.restart()
                    self._reconnector.up()
                    if self._connected is not None:
                        self._connected()
        finally:
            self._liveness.lost()
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()

    async def sweep(self, now: float) -> int:
        return 0

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._publisher is not None:
            with contextlib.suppress(Exception):
                await self._publisher.aclose()
            self._publisher = None
        self._liveness.lost()
