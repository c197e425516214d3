"""Session-wide fixtures: real PostgreSQL and Redis servers, started only when a test asks.

``postgres_server`` starts one server per pytest(-xdist) worker and stops it at
the end of the session; ``postgres_database_url`` gives each test a fresh empty
database on it. Without the PostgreSQL binaries the tests are skipped locally,
but fail under ``CI=true``: CI must never pass by skipping the real backend.
"""

from __future__ import annotations

import io
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

try:  # ``tests`` is a rootdir-less folder or a package, depending on the layout
    from services import (
        PostgresServer,
        RedisServer,
        ServiceUnavailable,
        start_postgres,
        start_redis,
        unavailable,
    )
    from support import Result, Run
except ImportError:  # pragma: no cover
    from tests.services import (
        PostgresServer,
        RedisServer,
        ServiceUnavailable,
        start_postgres,
        start_redis,
        unavailable,
    )
    from tests.support import Result, Run


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL 15 server for this test worker."""
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        unavailable("asyncpg is not installed (pip install keyturn[postgres])")
    try:
        server = start_postgres()
    except ServiceUnavailable as exc:
        unavailable(f"PostgreSQL binaries not found or unusable: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """SQLAlchemy URL of the server's default ``postgres`` database."""
    return postgres_server.url()


@pytest.fixture
def postgres_database_url(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A fresh, empty database for this test (as a ``postgresql+asyncpg`` URL).

    Synchronous on purpose (``psql`` over the server's unix socket), so async
    fixtures may request it with ``request.getfixturevalue``. Like an operator of a
    shared database, it sets ``KEYTURN_KEY_ENCRYPTION_KEY`` for the test (settings
    and ``keyturn`` subprocesses read it): keyturn refuses PostgreSQL without one.
    """
    from keyturn.keys.encryption import generate_kek

    monkeypatch.setenv("KEYTURN_KEY_ENCRYPTION_KEY", generate_kek())
    name = f"kt_{uuid.uuid4().hex[:16]}"
    postgres_server.sql(f'CREATE DATABASE "{name}"')
    yield postgres_server.url(name)
    postgres_server.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', check=False)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real ``redis-server`` for this test worker (append-only file on)."""
    try:
        import redis  # noqa: F401
    except ImportError:
        unavailable("redis-py is not installed (pip install keyturn[redis])")
    try:
        server = start_redis()
    except ServiceUnavailable as exc:
        unavailable(f"redis-server not found or unusable: {exc}")
    try:
        yield server
    finally:
        server.stop(keep_data=False)


_redis_databases = iter(range(1, 16))


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A URL of an empty logical database on the worker's Redis, flushed after the test.

    Databases 1-15 are handed out in turn (0 is left for tests that restart the
    server); a test that needs Redis Cluster-style key names still works here,
    since hash tags are only part of the key text.
    """
    global _redis_databases
    try:
        db = next(_redis_databases)
    except StopIteration:
        _redis_databases = iter(range(1, 16))
        db = next(_redis_databases)
    url = redis_server.database_url(db)
    _flush(redis_server, db)
    yield url
    if redis_server.running:
        _flush(redis_server, db)


def _flush(server: RedisServer, db: int) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=server.port, db=db)
    try:
        client.flushdb()
    finally:
        client.close()


# --- proof in the output that the real backends ran -----------------------------------

_BACKEND_FIXTURES = {
    "postgres": "postgres_server",
    "redis": "redis_server",
    "chromium": "browser",
}
_backend_outcomes: dict[str, dict[str, int]] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a real PostgreSQL server or a real browser."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if _BACKEND_FIXTURES["postgres"] in fixtures:
            item.add_marker("postgres")
        if _BACKEND_FIXTURES["redis"] in fixtures:
            item.add_marker("redis")
        if item.path.parent.name == "browser" and _BACKEND_FIXTURES["chromium"] in fixtures:
            item.add_marker("chromium")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count outcomes of backend tests (runs on the xdist controller too)."""
    if report.when != "call" and not (report.when == "setup" and not report.passed):
        return
    for marker in _BACKEND_FIXTURES:
        if marker in report.keywords:
            counts = _backend_outcomes.setdefault(marker, {})
            counts[report.outcome] = counts.get(report.outcome, 0) + 1


def pytest_configure(config: pytest.Config) -> None:
    """Name this run's revocation-lag report (see ``tests/cluster/lagreport.py``)
    in the main process; its xdist workers inherit the variable.

    Mail that a test sends through the embedded default (``.eml`` files) goes to a
    throw-away folder, never into ``./keyturn-outbox`` of the checkout: servers
    and ``Settings()`` read ``KEYTURN_MAIL_OUTBOX_DIR`` from the environment."""
    from tests.cluster.lagreport import REPORT_VARIABLE, new_report_path

    if not hasattr(config, "workerinput"):
        os.environ.setdefault(REPORT_VARIABLE, str(new_report_path()))
        outbox = tempfile.mkdtemp(prefix="keyturn-test-outbox-")
        os.environ.setdefault("KEYTURN_MAIL_OUTBOX_DIR", outbox)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per real backend: how many of its tests passed, failed or skipped;
    then the revocation lags the multi-instance tests measured, if they ran."""
    from tests.cluster.lagreport import format_report, read_report

    for marker, counts in sorted(_backend_outcomes.items()):
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
        terminalreporter.write_line(f"real {marker} tests: {summary}")
    report = read_report()
    if report:
        for line in format_report(report):
            terminalreporter.write_line(line)


# --- databases for one test ----------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file for this test (keyturn migrates it on start)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'keyturn.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """A migrated, empty database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return sqlite_url
    from keyturn.stores.sql.migrate import upgrade

    url: str = request.getfixturevalue("postgres_database_url")
    await upgrade(url)
    return url


# --- the command line, in process ----------------------------------------------------


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run ``keyturn ARGS`` in-process; ``stdin`` text is fed to standard input."""
    from keyturn.cli import main

    def invoke(*args: str, stdin: str = "") -> Result:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke
