"""An in-process bus: several keyturn instances in one process share a :class:`MemoryHub`.

For tests and for applications that run more than one :class:`~keyturn.Keyturn`
in one process. Delivery is synchronous: when :meth:`MemoryBus.publish` returns,
every other connected bus has applied the message. :meth:`MemoryBus.disconnect`
and :meth:`MemoryBus.reconnect` simulate losing the channel.
"""

from __future__ import annotations

from collections.abc import Callable

from keyturn.clock import Clock
from keyturn.errors import StoreUnavailable

__all__ = ["MemoryBus", "MemoryHub"]


class MemoryHub:
    """The shared channel of a group of :class:`MemoryBus` objects.

    Args:
        clock: POSIX time, for the buses' ``alive_since``.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._buses: list[MemoryBus] = []

    def bus(self) -> MemoryBus:
        """A new bus on this hub (one per instance)."""
        return MemoryBus(self)

    def _send(self, message: str) -> None:
        for bus in list(self._buses):
            bus._receive(message)


class MemoryBus:
    """One instance's end of a :class:`MemoryHub`."""

    name = "memory"
    #: As small as PostgreSQL's, so tests exercise splitting large changes.
    max_message_bytes = 7900

    def __init__(self, hub: MemoryHub) -> None:
        self.hub = hub
        self._deliver: Callable[[str], None] | None = None
        self._connected: Callable[[], None] | None = None
        self._online = False
        self._epoch = 0
        self._since: float | None = None

    @property
    def epoch(self) -> int | None:
        return self._epoch if self._online else None

    @property
    def alive_since(self) -> float | None:
        return self._since if self._online else None

    async def start(self, deliver: Callable[[str], None], connected: Callable[[], None]) -> None:
        self._deliver, self._connected = deliver, connected
        self.hub._buses.append(self)
        self.reconnect()

    async def publish(self, message: str) -> None:
        """Deliver to every connected bus on the hub, this one included.

        Raises:
            StoreUnavailable: this bus is disconnected.
        """
        if not self._online:
            raise StoreUnavailable("the memory bus is disconnected")
        self.hub._send(message)

    def disconnect(self) -> None:
        """Lose the channel: nothing is sent or received until :meth:`reconnect`."""
        self._online = False

    def reconnect(self) -> None:
        """Get the channel back; a new epoch begins."""
        self._online = True
        self._epoch += 1
        self._since = self.hub.clock.now()
        if self._connected is not None:
            self._connected()

    def _receive(self, message: str) -> None:
        if self._online and self._deliver is not None:
            self._deliver(message)

    async def sweep(self, now: float) -> int:
        return 0

    async def close(self) -> None:
        self._online = False
        if self in self.hub._buses:
            self.hub._buses.remove(self)
