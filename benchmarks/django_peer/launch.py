"""Start the Django peer for a benchmark and sign its user in both ways.

Imports neither Django nor keyturn's core: the server runs in its own process
(:mod:`django_peer.serve`), pinned like every measured server.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from keyturn.bench.errors import BenchError
from keyturn.bench.machine import SERVER_CPU
from keyturn.bench.servers import ServerProcess, free_port

SERVE = Path(__file__).with_name("serve.py")
EMAIL = "bench@bench.example"
REQUIRED = ("django", "rest_framework", "rest_framework_simplejwt", "gunicorn")


@dataclass
class DjangoPeer:
    """The running peer and a credential for each way to authenticate."""

    server: ServerProcess
    session: dict[str, str]  # Cookie: sessionid=...
    jwt: dict[str, str]  # Authorization: Bearer ...


def start_django(
    root: Path,
    password: str,
    *,
    server: str = "gunicorn",
    threads: int = 2,
    cpu: int | None = SERVER_CPU,
) -> DjangoPeer:
    """Start the peer on ``cpu``, sign its seeded user in with a session and a JWT,
    and check that both whoami routes accept them.

    Raises:
        BenchError: Django, DRF, simplejwt or gunicorn is not installed, or a step
            failed.
    """
    missing = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        raise BenchError(f"the Django peer needs {', '.join(missing)}: pip install -e '.[bench]'")
    port = free_port()
    command = [
        sys.executable,
        str(SERVE),
        "--port",
        str(port),
        "--database",
        str(root / "django.sqlite3"),
        "--email",
        EMAIL,
        "--password",
        password,
        "--server",
        server,
        "--threads",
        str(threads),
    ]
    process = ServerProcess(command, workdir=root, name="django", port=port)
    process.start(cpu=cpu, timeout=60)
    credentials = {"username": EMAIL, "password": password}
    with process.client() as client:
        response = client.post("/login", json=credentials)
        cookie = response.cookies.get("sessionid")
        if response.status_code != 200 or not cookie:
            raise BenchError(f"Django session login: {response.status_code} {response.text}")
        session = {"Cookie": f"sessionid={cookie}"}
        response = client.post("/api/token/", json=credentials)
        if response.status_code != 200:
            raise BenchError(f"simplejwt token: {response.status_code} {response.text}")
        jwt = {"Authorization": f"Bearer {response.json()['access']}"}
    with process.client() as client:  # a fresh client: no cookie jar between the two
        for path, headers, via in (
            ("/whoami/session", session, "session"),
            ("/whoami/jwt", jwt, "jwt"),
        ):
            response = client.get(path, headers=headers)
            if response.status_code != 200 or response.json().get("via") != via:
                raise BenchError(f"Django {path} refused its own credential: {response.text}")
            if client.get(path).status_code != 401:
                raise BenchError(f"Django {path} answered without a credential")
    return DjangoPeer(process, session, jwt)
