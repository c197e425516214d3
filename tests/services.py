"""Real backing services for the test suite: a throw-away PostgreSQL server.

``start_postgres()`` runs ``initdb`` into a fresh directory under the system temp
dir and ``pg_ctl start`` on a free 127.0.0.1 port, with the unix socket inside
that directory, durability switched off for speed, local (socket) connections
trusted and TCP connections authenticated by password (so tests can check that a
wrong password fails closed without leaking it). PostgreSQL refuses to run as
root, so under root the directory is handed to the ``postgres`` user and the
binaries run through ``runuser -u postgres --``.

Each pytest-xdist worker starts its own server (the fixture is session-scoped
per worker), so workers never share a data directory or a port.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from keyturn.bench.servers import free_port

PG_BIN = Path(os.environ.get("KEYTURN_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"
PG_PASSWORD = "keyturn-test-password"  # a throw-away local test server


def unavailable(reason: str) -> NoReturn:
    """A real service a test needs is missing: skip locally, fail under ``CI=true``
    (CI must never pass by skipping a real backend)."""
    import pytest

    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: tests of real services must run in CI)", pytrace=False)
    pytest.skip(reason)


class ServiceUnavailable(RuntimeError):
    """The service cannot be started on this machine (binaries missing, ...)."""


def _as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", PG_USER, "--", *args]
    return args


@dataclass
class PostgresServer:
    """A running PostgreSQL server owned by the test session."""

    root: Path
    port: int
    password: str = PG_PASSWORD

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    def dsn(self, database: str = "postgres") -> str:
        """A plain libpq/asyncpg DSN for ``database`` over TCP."""
        return f"postgresql://{PG_USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (``postgresql+asyncpg``) for ``database``."""
        return f"postgresql+asyncpg://{PG_USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, *, check: bool = True) -> str:
        """Run one SQL statement as the superuser through ``psql`` (unix socket)."""
        command = [
            str(PG_BIN / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            PG_USER,
            "-d",
            "postgres",
            "-c",
            statement,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    def stop_server(self) -> None:
        """Stop the server (``pg_ctl stop -m fast``: clients are disconnected) but keep
        its data directory and port, so :meth:`start_server` brings it back: an outage."""
        result = subprocess.run(
            _as_postgres(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"]
            ),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed: {result.stdout}{result.stderr}"[-2000:])

    def start_server(self) -> None:
        """Start a server stopped by :meth:`stop_server` again, on the same port and data."""
        result = subprocess.run(
            _as_postgres(_start_command(self)), capture_output=True, text=True, timeout=60
        )
        if result.returncode != 0:
            log = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
            raise RuntimeError(f"PostgreSQL did not restart:\n{result.stderr}{log}"[-2000:])

    def stop(self) -> None:
        """Stop the server at once and delete its directory."""
        try:
            subprocess.run(
                _as_postgres(
                    [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"]
                ),
                check=False,
                capture_output=True,
                timeout=30,
            )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def postgres_available() -> bool:
    """True when the PostgreSQL server binaries are installed."""
    return all((PG_BIN / name).is_file() for name in ("initdb", "pg_ctl", "postgres", "psql"))


def start_postgres(*, attempts: int = 3) -> PostgresServer:
    """Initialise and start a fresh PostgreSQL server; the caller must ``stop()`` it.

    Raises:
        ServiceUnavailable: the binaries are missing, or ``postgres`` user is
            missing while running as root.
        RuntimeError: the server did not start (the message holds its log).
    """
    if not postgres_available():
        raise ServiceUnavailable(f"PostgreSQL binaries not found in {PG_BIN}")
    root = Path(tempfile.mkdtemp(prefix="keyturn-pg-"))
    try:
        _initdb(root)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    last_error = ""
    for _ in range(attempts):  # another process may grab the free port first
        server = PostgresServer(root=root, port=free_port())
        result = subprocess.run(
            _as_postgres(_start_command(server)), capture_output=True, text=True, timeout=60
        )
        if result.returncode == 0:
            return server
        log = server.log_file.read_text(errors="replace") if server.log_file.exists() else ""
        last_error = f"{result.stdout}{result.stderr}{log}"[-2000:]
        time.sleep(0.2)
    shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(f"PostgreSQL did not start:\n{last_error}")


def _initdb(root: Path) -> None:
    (root / "sock").mkdir()
    password_file = root / "pwfile"
    password_file.write_text(PG_PASSWORD + "\n")
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(PG_USER)
        except KeyError:
            raise ServiceUnavailable(f"running as root but there is no {PG_USER!r} user") from None
        for path in (root, root / "sock", password_file):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    command = [
        str(PG_BIN / "initdb"),
        "-D",
        str(root / "data"),
        "-U",
        PG_USER,
        f"--pwfile={password_file}",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
    ]
    result = subprocess.run(_as_postgres(command), capture_output=True, text=True, timeout=120)
    password_file.unlink(missing_ok=True)
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed:\n{result.stdout}{result.stderr}"[-2000:])


def _start_command(server: PostgresServer) -> list[str]:
    options = " ".join(
        [
            f"-p {server.port}",
            f"-k {server.socket_dir}",
            "-c listen_addresses=127.0.0.1",
            "-c fsync=off",
            "-c full_page_writes=off",
            "-c synchronous_commit=off",
            "-c max_connections=200",
        ]
    )
    return [
        str(PG_BIN / "pg_ctl"),
        "-D",
        str(server.data_dir),
        "-l",
        str(server.log_file),
        "-o",
        options,
        "-w",
        "-t",
        "60",
        "start",
    ]


# --- Redis ----------------------------------------------------------------------------

REDIS_BIN = Path(os.environ.get("KEYTURN_TEST_REDIS_BIN", "/usr/bin"))


@dataclass
class RedisServer:
    """A running ``redis-server`` owned by the test session (or by one test).

    It persists to an append-only file in its directory (``appendfsync always``),
    so a test can stop and restart it and find what was written before, as an
    operator's Redis with AOF would.
    """

    root: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def database_url(self, db: int) -> str:
        """A URL for logical database ``db`` (0-15): one per test keeps tests apart."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, timeout: float = 20.0) -> None:
        """Start (or restart) the server on the same port and data directory."""
        if self.running:
            return
        log = (self.root / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(REDIS_BIN / "redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.root),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self.ping():
                return
            time.sleep(0.05)
        text = (self.root / "redis.log").read_text(errors="replace")[-2000:]
        self.stop(keep_data=True)
        raise RuntimeError(f"redis-server did not start:\n{text}")

    def ping(self) -> bool:
        """True when the server answers ``PING`` on its port."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, *, keep_data: bool = True) -> None:
        """Stop the server (SIGKILL: an outage, not a shutdown); delete its
        directory unless ``keep_data``."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
        if not keep_data:
            shutil.rmtree(self.root, ignore_errors=True)


def redis_available() -> bool:
    """True when ``redis-server`` is installed."""
    return (REDIS_BIN / "redis-server").is_file()


def start_redis(*, attempts: int = 3) -> RedisServer:
    """Start a fresh ``redis-server`` on a free loopback port; the caller must
    ``stop(keep_data=False)`` it.

    Raises:
        ServiceUnavailable: ``redis-server`` is not installed.
        RuntimeError: the server did not start.
    """
    if not redis_available():
        raise ServiceUnavailable(f"redis-server not found in {REDIS_BIN}")
    root = Path(tempfile.mkdtemp(prefix="keyturn-redis-"))
    error: Exception | None = None
    for _ in range(attempts):  # another process may grab the free port first
        server = RedisServer(root=root, port=free_port())
        try:
            server.start()
        except RuntimeError as exc:
            error = exc
            continue
        return server
    shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(str(error))
