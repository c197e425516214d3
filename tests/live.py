"""``keyturn`` as a real process: black-box helpers for server and browser tests.

:class:`LiveServer` runs ``keyturn serve`` on a free 127.0.0.1 port with its own
working directory (so ``./keyturn.db`` and ``keyturn-tls/`` never land in the
checkout), a clean environment (no ``KEYTURN_*`` from the caller's shell) and, unless
told otherwise, a fresh SQLite file. ``start()`` returns once ``GET /healthz``
answers, or fails with the process's stderr. Output goes to files, never to pipes,
so a chatty server cannot block on a full pipe buffer.

:func:`run_keyturn` runs any other ``keyturn`` command (``user add``, ``migrate``,
or a ``serve`` that is expected to refuse to start) to completion.

:class:`LiveServers` is what the ``live_server`` fixtures hand to tests: a factory
that starts servers and stops every one of them at teardown.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx
from tests.services import free_port

from keyturn.bench.servers import clean_environment, keyturn_command, sqlite_url

#: Seconds ``start()`` waits for ``/healthz`` to answer.
START_TIMEOUT = 20.0

#: Seconds ``stop()`` waits after SIGTERM before it kills the process.
STOP_TIMEOUT = 10.0


@dataclass
class Completed:
    """The outcome of one finished ``keyturn`` command."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        """Non-empty lines written to stderr."""
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_keyturn(
    *args: str,
    stdin: str = "",
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60.0,
) -> Completed:
    """Run ``keyturn ARGS`` to completion and return its exit code and output.

    A command still running after ``timeout`` seconds is killed and reported as an
    ``AssertionError`` with its output, so a server that starts when it should
    have refused fails the test instead of hanging it.
    """
    command = [*keyturn_command(), *args]
    workdir = cwd or Path(tempfile.mkdtemp(prefix="keyturn-cli-"))
    with subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_environment(env),
        cwd=workdir,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            _terminate(process)
            stdout, stderr = process.communicate()
            raise AssertionError(
                f"`keyturn {' '.join(args)}` still ran after {timeout:g} s\n"
                f"stdout:\n{stdout}\nstderr:\n{stderr}"
            ) from None
    return Completed(command, process.returncode, stdout, stderr)


def _terminate(process: subprocess.Popen[str], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the process group (uvicorn's workers included), then SIGKILL it."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)


class ServerDidNotStart(AssertionError):
    """``keyturn serve`` exited or did not answer ``/healthz`` in time."""


class LiveServer:
    """One ``keyturn serve`` process.

    ``args`` are extra ``serve`` flags. The port is chosen here and passed as
    ``--port`` (or as ``KEYTURN_PORT`` with ``port_via="env"``). ``database_url``
    defaults to a fresh SQLite file in the server's working directory. The scheme
    is ``https`` when the flags ask for TLS, unless ``scheme`` says otherwise.
    """

    def __init__(
        self,
        args: Sequence[str] = (),
        *,
        workdir: Path,
        database_url: str | None = None,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        port_via: Literal["flag", "env"] = "flag",
        scheme: Literal["http", "https"] | None = None,
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.database_path: Path | None = None
        if database_url is None:
            self.database_path = workdir / "keyturn.db"
            database_url = sqlite_url(self.database_path)
        self.database_url = database_url
        self.args = list(args)
        self.env = dict(env or {})
        self._fixed_port = port
        self.port = port or free_port()
        self.port_via = port_via
        tls = "--https" in self.args or "--tls-cert" in self.args
        self.scheme = scheme or ("https" if tls else "http")
        self.process: subprocess.Popen[str] | None = None
        self._stdout_path = workdir / "serve.stdout"
        self._stderr_path = workdir / "serve.stderr"

    # --- addresses -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def client(self, **options: object) -> httpx.Client:
        """A synchronous ``httpx.Client`` bound to :attr:`url` (TLS not verified)."""
        options.setdefault("verify", False)  # --https serves a self-signed certificate
        options.setdefault("timeout", 10.0)
        return httpx.Client(base_url=self.url, **options)  # type: ignore[arg-type]

    # --- output ----------------------------------------------------------------------

    @property
    def stdout(self) -> str:
        """Everything the server wrote to stdout so far."""
        return _read(self._stdout_path)

    @property
    def stderr(self) -> str:
        """Everything the server wrote to stderr so far (uvicorn logs there)."""
        return _read(self._stderr_path)

    @property
    def returncode(self) -> int | None:
        """The exit code once the process has ended, else ``None``."""
        return None if self.process is None else self.process.poll()

    # --- life cycle ------------------------------------------------------------------

    def command(self) -> list[str]:
        """The full command line of this server."""
        args = ["serve", "--database-url", self.database_url, *self.args]
        if self.port_via == "flag":
            args += ["--port", str(self.port)]
        return [*keyturn_command(), *args]

    def start(self, timeout: float = START_TIMEOUT, *, attempts: int = 3) -> LiveServer:
        """Start the process and wait until ``/healthz`` answers (any status).

        When the port was chosen here and another process took it first, a new
        port is tried (up to ``attempts`` times).

        Raises:
            ServerDidNotStart: the process exited, or did not answer in ``timeout``.
        """
        for attempt in range(attempts):
            try:
                self._start_once(timeout)
                return self
            except ServerDidNotStart:
                busy = "address already in use" in self.stderr.lower()
                if not busy or self._fixed_port is not None or attempt == attempts - 1:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")  # pragma: no cover

    def _start_once(self, timeout: float) -> None:
        env = dict(self.env)
        if self.port_via == "env":
            env["KEYTURN_PORT"] = str(self.port)
        with (
            self._stdout_path.open("w") as stdout,
            self._stderr_path.open("w") as stderr,
        ):
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                text=True,
                env=clean_environment(env),
                cwd=self.workdir,
                start_new_session=True,  # its own process group: stop() reaches the workers
            )
        deadline = time.monotonic() + timeout
        with httpx.Client(verify=False, timeout=2.0) as probe:  # noqa: S501 - self-signed
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise ServerDidNotStart(
                        f"`keyturn serve` exited with {self.process.returncode} before "
                        f"answering /healthz\nstderr:\n{self.stderr}"
                    )
                try:
                    probe.get(f"{self.url}/healthz")
                except httpx.TransportError:
                    time.sleep(0.1)
                    continue
                return
        self.stop()
        raise ServerDidNotStart(
            f"`keyturn serve` did not answer {self.url}/healthz within {timeout:g} s\n"
            f"stderr:\n{self.stderr}"
        )

    def stop(self) -> int | None:
        """SIGTERM the server (and its workers), SIGKILL if it lingers; its exit code."""
        if self.process is None:
            return None
        _terminate(self.process)
        return self.process.returncode

    def kill(self) -> int | None:
        """SIGKILL the server's process group at once (a crash, no shutdown); its exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.returncode
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(STOP_TIMEOUT)
        return self.process.returncode

    # --- the CLI against the same database ------------------------------------------

    def cli(self, *args: str, stdin: str = "", timeout: float = 60.0) -> Completed:
        """Run ``keyturn ARGS --database-url <this server's database>``."""
        return run_keyturn(
            *args,
            "--database-url",
            self.database_url,
            stdin=stdin,
            env=self.env,
            cwd=self.workdir,
            timeout=timeout,
        )

    def add_user(self, email: str, password: str, *roles: str) -> Completed:
        """``keyturn user add EMAIL --password-stdin``; fails the test if it fails."""
        role_args = [arg for role in roles for arg in ("--role", role)]
        result = self.cli("user", "add", email, "--password-stdin", *role_args, stdin=password)
        assert result.returncode == 0, f"keyturn user add failed:\n{result.stderr}"
        return result


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


class LiveServers:
    """A factory of started :class:`LiveServer` objects; ``stop_all()`` at teardown.

    Each server gets its own working directory under ``root``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.servers: list[LiveServer] = []

    def __call__(
        self,
        *args: str,
        start: bool = True,
        timeout: float = START_TIMEOUT,
        **options: object,
    ) -> LiveServer:
        """Start ``keyturn serve ARGS`` (see :class:`LiveServer` for ``options``)."""
        workdir = Path(tempfile.mkdtemp(prefix="serve-", dir=self.root))
        server = LiveServer(args, workdir=workdir, **options)  # type: ignore[arg-type]
        self.servers.append(server)
        if start:
            server.start(timeout)
        return server

    def stop_all(self) -> None:
        """Stop every server this factory started."""
        for server in self.servers:
            server.stop()


@contextlib.contextmanager
def server_with_account(root: Path, email: str, password: str) -> Iterator[LiveServer]:
    """One live ``keyturn serve`` (default settings) under ``root`` with one account,
    stopped on exit: the module fixture of every interop and example test."""
    servers = LiveServers(root)
    try:
        started = servers()
        started.add_user(email, password)
        yield started
    finally:
        servers.stop_all()
