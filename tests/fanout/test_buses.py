"""Every change bus against its real backend: what one bus object publishes, another
receives; a lost channel is noticed and recovered from.

Deadlines are generous ("within 2 s"): these tests prove delivery, they measure
nothing (the benchmarks and tests/cluster do).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from tests.services import PostgresServer, RedisServer, start_redis

from keyturn.clock import SystemClock
from keyturn.errors import StoreUnavailable
from keyturn.fanout.buses.polling import RETAIN, PollingBus
from keyturn.fanout.buses.postgres import APPLICATION_NAME, PostgresBus
from keyturn.fanout.buses.redis import RedisBus
from keyturn.fanout.changes import ChangeBus
from keyturn.fanout.instance import FanOut
from keyturn.settings import Settings
from keyturn.stores.sql import create_engine_for
from keyturn.stores.sql.direct import SqliteDirect
from keyturn.stores.sql.migrate import upgrade

BOUND = 2.0
DEADLINE = 2.0


class Listener:
    """A bus plus what it delivered and how often it (re)connected."""

    def __init__(self, bus: ChangeBus) -> None:
        self.bus = bus
        self.messages: list[str] = []
        self.connections = 0

    async def start(self) -> Listener:
        await self.bus.start(self.messages.append, self._connected)
        return self

    def _connected(self) -> None:
        self.connections += 1


async def eventually(check: Callable[[], bool], *, within: float = DEADLINE) -> None:
    """Wait (real time) until ``check()`` holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s")
        await asyncio.sleep(0.01)


async def exchange(a: Listener, b: Listener) -> None:
    """Both alive; what ``a`` publishes reaches ``b`` (and ``a`` itself)."""
    await eventually(lambda: a.bus.epoch is not None and b.bus.epoch is not None, within=5)
    text = f"hello {time.monotonic_ns()}"
    await a.bus.publish(text)
    await eventually(lambda: text in b.messages and text in a.messages)


BusPair = Callable[[], Awaitable[tuple[Listener, Listener]]]


@pytest.fixture
async def closing() -> AsyncIterator[list[ChangeBus]]:
    """Buses to close after the test."""
    buses: list[ChangeBus] = []
    yield buses
    for bus in buses:
        await bus.close()


async def pair(
    closing: list[ChangeBus], make: Callable[[], ChangeBus]
) -> tuple[Listener, Listener]:
    buses = make(), make()
    closing.extend(buses)
    return await Listener(buses[0]).start(), await Listener(buses[1]).start()


# --- Redis -----------------------------------------------------------------------------


async def test_redis_bus_delivers_between_two_instances(
    redis_url: str, closing: list[ChangeBus]
) -> None:
    """Redis pub/sub: publish on one bus object, receive on another within 2 s."""
    a, b = await pair(closing, lambda: RedisBus(redis_url, bound=BOUND, clock=SystemClock()))
    await exchange(a, b)
    assert a.bus.alive_since is not None and a.bus.alive_since <= time.time()


async def test_redis_outage_makes_the_bus_unhealthy_and_it_recovers(
    redis_server: RedisServer, closing: list[ChangeBus]
) -> None:
    """Stopping Redis ends the epoch within the bound (publishing fails meanwhile);
    after a restart the bus is alive again in a new epoch and delivers. (A private
    server: the worker's ``redis_server`` only proves redis-server is installed.)"""
    server: RedisServer = start_redis()
    try:
        a, b = await pair(closing, lambda: RedisBus(server.url, bound=BOUND, clock=SystemClock()))
        await exchange(a, b)
        before = a.bus.epoch
        server.stop()
        await eventually(lambda: a.bus.epoch is None and b.bus.epoch is None, within=BOUND)
        with pytest.raises(StoreUnavailable):  # redis-py's own error stays inside the bus
            await a.bus.publish("lost")
        server.start()
        await eventually(lambda: a.bus.epoch is not None and b.bus.epoch is not None, within=10)
        assert a.bus.epoch != before
        assert a.connections >= 2 and b.connections >= 2
        await exchange(a, b)
    finally:
        server.stop(keep_data=False)


# --- PostgreSQL --------------------------------------------------------------------------


def postgres_bus(url: str) -> PostgresBus:
    """A PostgreSQL bus on ``url`` with the test bound and the real clocks."""
    return PostgresBus(url, bound=BOUND, clock=SystemClock())


async def test_postgres_bus_delivers_between_two_instances(
    postgres_database_url: str, closing: list[ChangeBus]
) -> None:
    """LISTEN/NOTIFY: publish on one bus object, receive on another within 2 s."""
    a, b = await pair(closing, lambda: postgres_bus(postgres_database_url))
    await exchange(a, b)


async def test_postgres_bus_splits_large_changes_under_the_payload_limit(
    postgres_database_url: str, closing: list[ChangeBus]
) -> None:
    """A sign-out of 400 sessions is over 8000 bytes: it arrives in chunks, whole."""
    from keyturn.fanout.changes import Change

    settings = Settings(staleness_bound=BOUND)
    sender = FanOut(settings, bus=postgres_bus(postgres_database_url))
    receiver_bus = postgres_bus(postgres_database_url)
    receiver = FanOut(settings, bus=receiver_bus)
    forgotten: list[str] = []

    class Sessions:
        def forget(self, id_hash: str) -> None:
            forgotten.append(id_hash)

        def forget_user(self, user_id: str) -> None:
            pass

    receiver.attach(sessions=Sessions())
    await sender.start()
    await receiver.start()
    try:
        await eventually(lambda: sender.epoch is not None and receiver.epoch is not None, within=5)
        hashes = tuple(f"{n:064x}" for n in range(400))
        await sender.publish(Change("sessions", user_id="u1", id_hashes=hashes))
        assert sender.published > 1
        await eventually(lambda: len(forgotten) == len(hashes))
        assert sorted(forgotten) == sorted(hashes)
    finally:
        await sender.close()
        await receiver.close()


async def test_postgres_bus_reconnects_after_its_connection_is_killed(
    postgres_database_url: str, postgres_server: PostgresServer, closing: list[ChangeBus]
) -> None:
    """A terminated listening backend ends the epoch; the bus reconnects in a new
    one and delivers again."""
    a, b = await pair(closing, lambda: postgres_bus(postgres_database_url))
    await exchange(a, b)
    before = b.bus.epoch
    assert APPLICATION_NAME == "keyturn-fanout"
    postgres_server.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'keyturn-fanout'"
    )
    await eventually(lambda: b.bus.epoch not in (None, before), within=10)
    await exchange(a, b)


# --- polling (SQLite) ---------------------------------------------------------------------


@pytest.mark.parametrize("direct", [False, True], ids=["core", "direct"])
async def test_polling_bus_delivers_between_two_processes_sharing_a_file(
    tmp_path: Path, closing: list[ChangeBus], direct: bool
) -> None:
    """Two engines on one SQLite file (as two processes would): a row inserted by
    one is delivered by the other's poll within 2 s, whether the poll goes through
    SQLAlchemy or the plain-SQL path ``keyturn serve`` gives it."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    await upgrade(url)
    engines = [create_engine_for(url), create_engine_for(url)]
    directs = [SqliteDirect(engine) for engine in engines] if direct else [None, None]
    try:
        made = iter(zip(engines, directs, strict=True))

        def bus() -> PollingBus:
            engine, plain = next(made)
            return PollingBus(engine, bound=BOUND, clock=SystemClock(), direct=plain)

        a, b = await pair(closing, bus)
        await exchange(a, b)
        await exchange(b, a)
    finally:
        for each in closing:
            await each.close()
        closing.clear()
        for plain in directs:
            if plain is not None:
                await plain.close()
        for engine in engines:
            await engine.dispose()


async def test_polling_bus_sweep_trims_old_changes(tmp_path: Path) -> None:
    """The sweeper deletes changes older than RETAIN seconds and keeps newer ones."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    await upgrade(url)
    engine = create_engine_for(url)
    try:
        bus = PollingBus(engine, bound=BOUND, clock=SystemClock())
        await bus.publish("old")
        await bus.publish("new")
        assert await bus.sweep(time.time() + RETAIN / 2) == 0
        assert await bus.sweep(time.time() + RETAIN + 60) == 2
    finally:
        await engine.dispose()
