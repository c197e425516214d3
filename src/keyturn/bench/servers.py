"""Servers the benchmark starts for itself, on 127.0.0.1 only.

:class:`ServerProcess` runs any HTTP server command on a free loopback port in its
own working directory and process group, with output going to files (a chatty
server never blocks on a full pipe), and waits until a health path answers.
:class:`KeyturnServer` is one for ``keyturn serve`` of this very interpreter,
on a fresh SQLite file, with no ``KEYTURN_*`` variable from the caller's shell, so
a run measures keyturn's defaults and nothing the user happened to export.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from keyturn.bench.errors import BenchError
from keyturn.bench.machine import pin_process, pinned

__all__ = [
    "LOOPBACK",
    "KeyturnServer",
    "ServerProcess",
    "clean_environment",
    "free_port",
    "keyturn_command",
    "sqlite_url",
]

#: Where every server listens; nothing else is ever contacted.
LOOPBACK = "127.0.0.1"

#: Seconds a server gets to answer its health path after it was started.
START_TIMEOUT = 30.0

#: Seconds a server gets after SIGTERM before it is killed.
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def keyturn_command() -> list[str]:
    """The ``keyturn`` script of this interpreter's environment, or an equivalent."""
    script = Path(sys.executable).with_name("keyturn")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", "from keyturn.cli import main; main()"]


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``KEYTURN_*`` variables, plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("KEYTURN_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def sqlite_url(path: Path) -> str:
    """A ``sqlite+aiosqlite`` URL for the database file ``path``."""
    return f"sqlite+aiosqlite:///{path}"


def read_text(path: Path) -> str:
    """A file's text, or empty when it does not exist (yet)."""
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


class ServerProcess:
    """One HTTP server process on ``127.0.0.1:port``.

    ``command`` is called with the port and returns the full command line.
    ``start()`` returns once ``GET health_path`` answers with any status.
    """

    def __init__(
        self,
        command: Sequence[str] | None = None,
        *,
        workdir: Path,
        name: str = "server",
        health_path: str = "/livez",
        env: Mapping[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.name = name
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.health_path = health_path
        self.env = dict(env or {})
        self.port = port or free_port()
        self._command = list(command or [])
        self.process: subprocess.Popen[bytes] | None = None
        self._stdout = workdir / f"{name}.stdout"
        self._stderr = workdir / f"{name}.stderr"

    @property
    def url(self) -> str:
        """Base URL, ``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        """The server's process id (it must have been started)."""
        if self.process is None:
            raise BenchError(f"{self.name} was not started")
        return self.process.pid

    def command(self) -> list[str]:
        """The full command line (subclasses add the port)."""
        return list(self._command)

    def client(self, **options: object) -> httpx.Client:
        """A synchronous ``httpx.Client`` bound to :attr:`url`."""
        options.setdefault("timeout", 30.0)
        return httpx.Client(base_url=self.url, **options)  # type: ignore[arg-type]

    @property
    def stderr(self) -> str:
        """Everything the server wrote to stderr so far."""
        return read_text(self._stderr)

    def last_error_line(self) -> str:
        """The last meaningful stderr line, for one-line error messages."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line.lower()]
        return (errors or lines or ["(no output)"])[-1]

    def start(self, *, cpu: int | None = None, timeout: float = START_TIMEOUT) -> ServerProcess:
        """Start the process (on ``cpu`` if given) and wait for its health path.

        Raises:
            BenchError: the process exited or did not answer within ``timeout``.
        """
        with self._stdout.open("wb") as stdout, self._stderr.open("wb") as stderr, pinned(cpu):
            self.process = subprocess.Popen(  # noqa: S603 - our own command line
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=clean_environment(self.env),
                cwd=self.workdir,
                start_new_session=True,  # its own process group: stop() reaches children
            )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as probe:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise BenchError(
                        f"{self.name} exited with {self.process.returncode} before it "
                        f"served: {self.last_error_line()}"
                    )
                try:
                    probe.get(self.url + self.health_path)
                except httpx.TransportError:
                    time.sleep(0.05)
                    continue
                return self
        self.stop()
        raise BenchError(f"{self.name} did not answer {self.url} within {timeout:g} s")

    def pin(self, cpu: int | None) -> None:
        """Move every thread of the running server to ``cpu`` (``None``: all CPUs)."""
        pin_process(self.pid, None if cpu is None else {cpu})

    def rss_bytes(self) -> int | None:
        """The server's resident set size, from ``/proc`` (or psutil); None when
        neither is available."""
        status = Path(f"/proc/{self.pid}/status")
        with contextlib.suppress(OSError):
            for line in status.read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        try:
            import psutil  # type: ignore[import-untyped, unused-ignore]
        except ImportError:
            return None
        return int(psutil.Process(self.pid).memory_info().rss)

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT)


class KeyturnServer(ServerProcess):
    """``keyturn serve ARGS --database-url URL --port PORT`` (one worker unless
    ``args`` say otherwise), with ``--password-grant`` on."""

    def __init__(
        self,
        args: Sequence[str] = (),
        *,
        workdir: Path,
        database_url: str | None = None,
        name: str = "keyturn",
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(workdir=workdir, name=name, health_path="/livez", env=env)
        self.args = list(args)
        self.database_url = database_url or sqlite_url(workdir / "keyturn.db")

    def command(self) -> list[str]:
        return [
            *keyturn_command(),
            "serve",
            "--database-url",
            self.database_url,
            # A benchmark registers all its users from 127.0.0.1.
            "--register-max-per-client",
            "1000",
            # The token benchmarks sign in with the password grant, which keyturn
            # leaves off by default (#12): a benchmark server turns it on.
            "--password-grant",
            *self.args,
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
        ]
