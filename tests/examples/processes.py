"""The examples as real processes, for tests/examples and tests/browser.

:class:`NotesServer` runs ``python -m examples.notes`` and :class:`ReportsServer`
``python -m examples.reports``, each on a free 127.0.0.1 port in its own working
directory, exactly as ``examples/README.md`` tells a user to;
:meth:`ExampleProcesses.signed_in_reports` registers reports as a client of the
notes app for its port first, as ``make example-reports-strict`` does. They reuse
:class:`tests.live.LiveServer` for the rest: a clean environment (no
``KEYTURN_*`` from the caller), output to files, waiting for ``/healthz``, and
stopping the whole process group. The notes app's keyturn database is
``WORKDIR/keyturn.db``, so ``LiveServer.cli`` and ``add_user`` work against it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.live import Completed, LiveServer, clean_environment
from tests.services import free_port

#: The checkout: ``examples`` is imported from here, as ``python -m`` does from it.
REPO = Path(__file__).resolve().parents[2]

PASSWORD = "correct horse battery staple"


def example_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """What the examples run with: ``PYTHONPATH`` at the checkout, a registration
    limit above what a module's tests register from 127.0.0.1, plus ``extra``."""
    return {"PYTHONPATH": str(REPO), "KEYTURN_REGISTER_MAX_PER_CLIENT": "1000", **(extra or {})}


class NotesServer(LiveServer):
    """``python -m examples.notes --port P --data-dir WORKDIR``."""

    def __init__(self, workdir: Path, *, env: Mapping[str, str] | None = None) -> None:
        super().__init__((), workdir=workdir, env=example_environment(env))

    @property
    def notes_path(self) -> Path:
        """The notes' own SQLite file."""
        return self.workdir / "notes.sqlite"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "examples.notes",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.workdir),
        ]

    def register(self) -> str:
        """A new account with password ``PASSWORD``, through ``POST /auth/register``
        (cheaper than a ``keyturn user add`` process); its e-mail address."""
        email = f"user-{uuid.uuid4().hex[:10]}@example.com"
        with self.client() as http:
            response = http.post("/auth/register", json={"email": email, "password": PASSWORD})
        assert response.status_code == 201, response.text
        return email

    def token(self, email: str, scope: str, password: str = PASSWORD) -> dict[str, Any]:
        """A password grant for ``scope``: the token response."""
        with self.client() as http:
            response = http.post(
                "/oauth/token",
                data={
                    "grant_type": "password",
                    "username": email,
                    "password": password,
                    "scope": scope,
                },
            )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def register_reports_client(
        self, reports_url: str | None = None, out: Path | None = None
    ) -> Path:
        """``python -m examples.reports.register_client --data-dir WORKDIR
        [--reports-url URL] [--out FILE]``: the JSON file with the confidential
        client's credentials (``WORKDIR/reports-client.json`` unless ``out``)."""
        args = ["--data-dir", str(self.workdir)]
        if reports_url is not None:
            args += ["--reports-url", reports_url]
        if out is not None:
            args += ["--out", str(out)]
        result = run_example("examples.reports.register_client", *args)
        assert result.returncode == 0, result.stderr
        return out or self.workdir / "reports-client.json"


class ReportsServer(LiveServer):
    """``python -m examples.reports --port P --issuer ISSUER ARGS``."""

    def __init__(
        self, workdir: Path, issuer: str, args: Sequence[str] = (), *, port: int | None = None
    ) -> None:
        super().__init__(args, workdir=workdir, env=example_environment(), port=port)
        self.issuer = issuer
        #: The client id at the issuer, for a reports service that signs users in.
        self.client_id: str | None = None

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "examples.reports",
            "--port",
            str(self.port),
            "--issuer",
            self.issuer,
            *self.args,
        ]


class ExampleProcesses:
    """Starts example servers under ``root``; ``stop_all()`` at teardown."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.servers: list[LiveServer] = []

    def _workdir(self, name: str) -> Path:
        workdir = self.root / f"{name}-{len(self.servers)}"
        workdir.mkdir(parents=True)
        return workdir

    def notes(self, *, env: Mapping[str, str] | None = None) -> NotesServer:
        server = NotesServer(self._workdir("notes"), env=env)
        self.servers.append(server)
        server.start()
        return server

    def reports(self, issuer: str, *args: str) -> ReportsServer:
        server = ReportsServer(self._workdir("reports"), issuer, args)
        self.servers.append(server)
        server.start()
        return server

    def signed_in_reports(self, notes: NotesServer, *args: str) -> ReportsServer:
        """Reports with "Sign in with keyturn": registered at ``notes`` by
        ``register_client`` for its URL (a fixed port, so the registered redirect,
        post-logout and back-channel URIs stay right), then started with
        ``--client-file`` (so strict mode too)."""
        server = ReportsServer(self._workdir("reports"), notes.url, port=free_port())
        client_file = notes.register_reports_client(
            server.url, out=server.workdir / "reports-client.json"
        )
        server.client_id = read_json(client_file)["client_id"]
        server.args = ["--client-file", str(client_file), *args]
        self.servers.append(server)
        server.start()
        return server

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


def run_example(
    module: str, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60.0
) -> Completed:
    """``python -m MODULE ARGS`` to completion (stdin closed, in a scratch directory)."""
    command = [sys.executable, "-m", module, *args]
    completed = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=clean_environment(example_environment(env)),
        cwd=tempfile.mkdtemp(prefix="keyturn-example-"),
        timeout=timeout,
        check=False,
    )
    return Completed(command, completed.returncode, completed.stdout, completed.stderr)


def read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data
