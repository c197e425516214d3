"""The channels :mod:`keyturn.fanout` publishes changes on, and how one is chosen.

=============  ====================================  ===========================
bus            used when                             delivery
=============  ====================================  ===========================
``redis``      ``--redis-url`` is set                pub/sub, one channel
``postgres``   PostgreSQL without Redis              ``LISTEN``/``NOTIFY``
``polling``    a SQLite file                         a change table, 50 ms polls
``memory``     tests; several instances in-process   synchronous calls
none           ``--fanout off``, in-memory SQLite,   changes stay local; caches
               or storage passed in by the caller    keep the plain bound
=============  ====================================  ===========================

Drivers (``redis``, ``asyncpg``) are imported only when a bus connects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keyturn.fanout.buses.memory import MemoryBus, MemoryHub

if TYPE_CHECKING:
    from keyturn.clock import Clock
    from keyturn.fanout.changes import ChangeBus
    from keyturn.settings import Settings
    from keyturn.stores.protocols import Storage

__all__ = ["MemoryBus", "MemoryHub", "open_bus"]


def open_bus(settings: Settings, storage: Storage, clock: Clock) -> ChangeBus | None:
    """The bus for these settings and this storage, not yet started (see the
    module doc for the choice); None when fan-out is off or pointless."""
    if settings.fanout == "off":
        return None
    bound = settings.staleness_bound
    if settings.redis_url:
        from keyturn.fanout.buses.redis import RedisBus

        return RedisBus(settings.redis_url, bound=bound, clock=clock)
    from sqlalchemy.ext.asyncio import AsyncEngine

    engine = getattr(storage, "engine", None)
    if not isinstance(engine, AsyncEngine):
        return None  # memory storage: nothing is shared with another process
    if engine.dialect.name == "postgresql":
        from keyturn.fanout.buses.postgres import PostgresBus

        url = engine.url.render_as_string(hide_password=False)
        return PostgresBus(url, bound=bound, clock=clock, engine=engine)
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        from keyturn.fanout.buses.polling import PollingBus
        from keyturn.stores.sql.direct import SqliteDirect

        direct = getattr(storage, "direct", None)
        return PollingBus(
            engine,
            bound=bound,
            clock=clock,
            direct=direct if isinstance(direct, SqliteDirect) else None,
        )
    return None
