"""Fixtures of the multi-instance and fault tests: private PostgreSQL and Redis
servers and clusters of ``keyturn serve`` processes on them (tests/cluster/harness.py).

- ``cluster_postgres``: a private PostgreSQL server for this worker (not the one
  other tests share: these tests stop and restart servers).
- ``cluster``: three instances on it and on a private Redis, shared by the tests of
  this worker that only sign in, revoke and measure (each uses fresh accounts).
- ``make_cluster``: a fresh cluster (own Redis, own database, optionally its own
  PostgreSQL server) for a test that breaks something; torn down after the test.

Without PostgreSQL, Redis or their Python drivers the tests are skipped locally and
fail under ``CI=true``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.cluster.harness import Cluster, MakeCluster
from tests.services import (
    PostgresServer,
    RedisServer,
    ServiceUnavailable,
    start_postgres,
    start_redis,
    unavailable,
)


def _require_drivers() -> None:
    for module, extra in (("asyncpg", "postgres"), ("redis", "redis")):
        try:
            __import__(module)
        except ImportError:
            unavailable(f"{module} is not installed (pip install keyturn[{extra}])")


def _postgres() -> PostgresServer:
    _require_drivers()
    try:
        return start_postgres()
    except ServiceUnavailable as exc:
        unavailable(f"PostgreSQL binaries not found or unusable: {exc}")


def _redis() -> RedisServer:
    _require_drivers()
    try:
        return start_redis()
    except ServiceUnavailable as exc:
        unavailable(f"redis-server not found or unusable: {exc}")


@pytest.fixture(scope="session")
def cluster_postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL server for this worker's clusters."""
    server = _postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def cluster(
    cluster_postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Three ``keyturn serve`` instances on one PostgreSQL and one Redis, shared by
    the tests of this worker that leave the servers running."""
    redis = _redis()
    started = Cluster(tmp_path_factory.mktemp("cluster"), cluster_postgres, redis)
    try:
        yield started.start()
    finally:
        started.stop()
        redis.stop(keep_data=False)


@pytest.fixture
def make_cluster(cluster_postgres: PostgresServer, tmp_path: Path) -> Iterator[MakeCluster]:
    """``make_cluster(size=3, private_postgres=False, args=())``: start a fresh cluster
    with its own Redis (and its own PostgreSQL server if asked), stopped after the test."""
    teardown: list[Callable[[], None]] = []

    def make(
        size: int = 3, *, private_postgres: bool = False, args: tuple[str, ...] = ()
    ) -> Cluster:
        postgres = cluster_postgres
        if private_postgres:
            postgres = _postgres()
            teardown.append(postgres.stop)
        redis = _redis()
        teardown.append(lambda: redis.stop(keep_data=False))
        made = Cluster(tmp_path / f"cluster-{len(teardown)}", postgres, redis, size=size, args=args)
        teardown.append(made.stop)
        return made.start()

    try:
        yield make
    finally:
        for step in reversed(teardown):
            step()
