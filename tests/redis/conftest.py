"""Fixtures of the Redis-specific tests: a connection on the worker's shared
server (``redis_url``), and private servers for tests that stop Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from tests.live import LiveServers
from tests.services import RedisServer, start_redis

from keyturn.stores.redis import RedisConnection


@pytest.fixture
async def connection(redis_url: str) -> AsyncIterator[RedisConnection]:
    """A keyturn Redis connection on an empty logical database."""
    opened = RedisConnection(redis_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def private_redis(redis_server: RedisServer) -> Iterator[RedisServer]:
    """A ``redis-server`` of this test alone (AOF on), for tests that stop it.

    Asks for ``redis_server`` first so that a missing Redis skips locally and
    fails under ``CI=true``, like every other Redis test.
    """
    del redis_server
    server = start_redis()
    try:
        yield server
    finally:
        server.stop(keep_data=False)


@pytest.fixture
def live_servers(tmp_path: Path) -> Iterator[LiveServers]:
    """Starts ``keyturn serve`` processes; stops them all at teardown."""
    servers = LiveServers(tmp_path)
    try:
        yield servers
    finally:
        servers.stop_all()
