"""Black-box tests of ``keyturn serve`` as a real process (issue #2, "Done when").

Each test starts the installed ``keyturn`` command in a subprocess (see
``tests/live.py``) and talks to it over TCP, exactly as an operator would.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import ssl
import time
from pathlib import Path

import httpx
import pytest
from tests.live import LiveServers, run_keyturn
from tests.services import free_port

from keyturn.stores.sql.migrate import head_revision
from keyturn.tls import ensure_self_signed_certificate

PASSWORD = "correct horse battery staple"

#: Seconds within which a ``serve`` that must refuse to start has to exit.
REFUSAL_TIMEOUT = 20.0


def assert_one_line_error(stderr: str) -> str:
    """The single non-empty stderr line of a failed command (never a traceback)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert lines[0].startswith("keyturn: error: "), lines[0]
    return lines[0]


def trusting(cert: Path) -> ssl.SSLContext:
    """A client TLS context that trusts exactly the certificate ``cert``."""
    return ssl.create_default_context(cafile=str(cert))


def test_serve_creates_and_migrates_a_fresh_sqlite_file(live_server: LiveServers) -> None:
    """A first start on a missing SQLite file creates it at the newest schema and is healthy."""
    server = live_server()
    with server.client() as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert server.database_path is not None and server.database_path.is_file()
    with sqlite3.connect(server.database_path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    assert "users" in tables
    assert revision == head_revision()


def test_cli_user_add_and_list_share_the_running_servers_database(
    live_server: LiveServers,
) -> None:
    """``user add --password-stdin`` then ``user list`` on the served file show the account."""
    server = live_server(env={"COLUMNS": "200"})
    added = server.cli("user", "add", "a@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert "a@example.com" in added.stdout
    listed = server.cli("user", "list")
    assert listed.returncode == 0, listed.stderr
    assert "a@example.com" in listed.stdout
    assert "active" in listed.stdout
    with server.client() as client:
        assert client.get("/healthz").status_code == 200


def test_sigterm_stops_the_server_cleanly(live_server: LiveServers) -> None:
    """SIGTERM (a service manager's stop) shuts the app down gracefully and frees the port."""
    server = live_server()
    # uvicorn re-raises the signal after a graceful shutdown, as service managers expect.
    assert server.stop() in (0, -signal.SIGTERM), server.stderr
    assert "Application shutdown complete" in server.stderr
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=2):
        pass


def test_several_workers_serve_healthz(live_server: LiveServers) -> None:
    """``--workers 2`` starts a multi-process server that answers on fresh connections."""
    server = live_server("--workers", "2", timeout=40)
    for _ in range(12):
        with server.client() as client:  # a new connection each time
            response = client.get("/healthz")
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
    server.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", server.port), timeout=2):
        pass


def test_first_serve_generates_a_kek_file_and_says_so_once(live_server: LiveServers) -> None:
    """The embedded default writes keyturn.db.kek (0600) beside the database, says
    "back it up" on the first start only, and publishes the access-token key and
    the RS256 ID-token key (OpenID Connect), the same after a restart."""
    first = live_server()
    with first.client() as client:
        jwks = client.get("/.well-known/jwks.json").json()
    kek = first.workdir / "keyturn.db.kek"
    assert f"generated a key-encryption key in {kek}; back it up" in first.stderr
    assert kek.stat().st_mode & 0o777 == 0o600
    assert sorted(key["alg"] for key in jwks["keys"]) == ["ES256", "RS256"]
    first.stop()
    again = live_server(database_url=first.database_url)
    with again.client() as client:
        assert client.get("/.well-known/jwks.json").json() == jwks
    assert "generated a key-encryption key" not in again.stderr


def test_https_serves_a_generated_certificate_with_hsts(live_server: LiveServers) -> None:
    """``--https`` serves TLS with a generated localhost certificate and sends HSTS."""
    server = live_server("--https")
    assert server.url.startswith("https://")
    with server.client() as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert "max-age=" in response.headers["strict-transport-security"]
    cert = server.workdir / "keyturn-tls" / "keyturn-cert.pem"
    assert cert.is_file()
    with httpx.Client(verify=trusting(cert), timeout=10) as verified:
        assert verified.get(f"{server.url}/healthz").status_code == 200
    assert "self-signed" in server.stderr


def test_https_port_refuses_plain_http(live_server: LiveServers) -> None:
    """A TLS port answers no plain-HTTP request (nothing is served unencrypted)."""
    server = live_server("--https")
    with (
        httpx.Client(timeout=5) as client,
        pytest.raises(httpx.TransportError),
    ):
        client.get(f"http://127.0.0.1:{server.port}/healthz")


def test_tls_cert_and_key_files_are_served(live_server: LiveServers, tmp_path: Path) -> None:
    """``--tls-cert/--tls-key`` serve the given certificate, verifiable by a client."""
    cert, key = ensure_self_signed_certificate(tmp_path / "certs")
    server = live_server("--tls-cert", str(cert), "--tls-key", str(key))
    assert server.url.startswith("https://")
    with httpx.Client(verify=trusting(cert), timeout=10) as client:
        response = client.get(f"{server.url}/healthz")
    assert response.status_code == 200
    assert "strict-transport-security" in response.headers
    assert not (server.workdir / "keyturn-tls").exists()


def test_plain_http_sends_no_hsts(live_server: LiveServers) -> None:
    """HSTS is only sent over HTTPS (browsers ignore it on http, and it would mislead)."""
    server = live_server()
    with server.client() as client:
        response = client.get("/healthz")
    assert "strict-transport-security" not in response.headers


def test_hsts_behind_a_trusted_tls_proxy(live_server: LiveServers) -> None:
    """``--trusted-proxies``: a request a trusted proxy says came over HTTPS gets
    HSTS from ``keyturn serve`` itself; the same header from an untrusted peer
    does not (#10 item 10a)."""
    trusting_loopback = live_server("--trusted-proxies", "127.0.0.1")
    with trusting_loopback.client() as client:
        forwarded = client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
        plain = client.get("/healthz")
    assert forwarded.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert "strict-transport-security" not in plain.headers
    trusting_others = live_server("--trusted-proxies", "10.0.0.0/8")
    with trusting_others.client() as client:
        spoofed = client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" not in spoofed.headers


@pytest.mark.postgres
def test_serve_refuses_an_unmigrated_postgres_database(postgres_database_url: str) -> None:
    """On an empty PostgreSQL database ``serve`` exits at once saying to run ``keyturn migrate``."""
    started = time.monotonic()
    result = run_keyturn(
        "serve",
        "--database-url",
        postgres_database_url,
        "--port",
        str(free_port()),
        timeout=REFUSAL_TIMEOUT,
    )
    assert result.returncode != 0
    assert time.monotonic() - started < REFUSAL_TIMEOUT
    line = assert_one_line_error(result.stderr)
    assert "keyturn migrate" in line


@pytest.mark.postgres
def test_serve_runs_on_postgres_after_migrate(
    live_server: LiveServers, postgres_database_url: str
) -> None:
    """After ``keyturn migrate`` the same URL serves and ``/healthz`` reports the database ok."""
    migrated = run_keyturn("migrate", "--database-url", postgres_database_url)
    assert migrated.returncode == 0, migrated.stderr
    kek = {"KEYTURN_KEY_ENCRYPTION_KEY": os.environ["KEYTURN_KEY_ENCRYPTION_KEY"]}
    server = live_server(database_url=postgres_database_url, env=kek)
    with server.client() as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"
    again = run_keyturn("migrate", "--database-url", postgres_database_url)
    assert again.returncode == 0, again.stderr
    assert "up to date" in " ".join(again.stdout.split())  # Rich wraps at 80 columns


def test_unreachable_postgres_is_one_line_with_the_password_masked() -> None:
    """An unreachable PostgreSQL URL fails fast, in one line, without printing the password."""
    secret = "s3cret-Pa55word"
    url = f"postgresql+asyncpg://keyturn:{secret}@127.0.0.1:{free_port()}/keyturn"
    result = run_keyturn(
        "serve", "--database-url", url, "--port", str(free_port()), timeout=REFUSAL_TIMEOUT
    )
    assert result.returncode != 0
    line = assert_one_line_error(result.stderr)
    assert secret not in result.stderr + result.stdout
    assert "127.0.0.1" in line


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--port", "0"], {}),
        (["--workers", "many"], {}),
        ([], {"KEYTURN_PORT": "70000"}),
        ([], {"KEYTURN_REVOCATION_MODE": "sometimes"}),
    ],
    ids=["port-flag", "workers-flag", "port-env", "revocation-mode-env"],
)
def test_invalid_setting_exits_2_with_one_line(args: list[str], env: dict[str, str]) -> None:
    """An invalid flag or ``KEYTURN_*`` value stops ``serve`` with exit code 2 and one line."""
    result = run_keyturn("serve", *args, env=env, timeout=REFUSAL_TIMEOUT)
    assert result.returncode == 2
    assert_one_line_error(result.stderr)


def test_keyturn_port_environment_variable_is_honoured(live_server: LiveServers) -> None:
    """``KEYTURN_PORT`` chooses the port when no ``--port`` flag is given."""
    server = live_server(port_via="env")
    assert "--port" not in server.command()
    with server.client() as client:
        assert client.get("/healthz").status_code == 200
    assert f":{server.port}" in server.stderr


def test_responses_carry_no_server_header(live_server: LiveServers) -> None:
    """No ``Server`` header advertises the software, on success or on a 404."""
    server = live_server()
    with server.client() as client:
        ok = client.get("/healthz")
        missing = client.get("/no-such-page")
    assert ok.status_code == 200
    assert missing.status_code == 404
    assert "server" not in ok.headers
    assert "server" not in missing.headers


def test_default_revocation_mode_is_strict(live_server: LiveServers) -> None:
    """Out of the box ``/healthz`` reports ``strict`` revocation and start-up warns of nothing."""
    server = live_server()
    with server.client() as client:
        body = client.get("/healthz").json()
    assert body["revocation_mode"] == "strict"
    assert "warning" not in body
    keyturn_lines = [line for line in server.stderr.splitlines() if line.startswith("keyturn:")]
    assert keyturn_lines, server.stderr
    assert not any("warning" in line for line in keyturn_lines)


def test_stateless_revocation_mode_warns_at_start_and_in_healthz(
    live_server: LiveServers,
) -> None:
    """``--revocation-mode stateless`` says so on stderr at start-up and in ``/healthz``."""
    server = live_server("--revocation-mode", "stateless")
    with server.client() as client:
        body = client.get("/healthz").json()
    assert body["revocation_mode"] == "stateless"
    assert "warning" in body
    startup = [line for line in server.stderr.splitlines() if line.startswith("keyturn: warning")]
    assert startup and "stateless" in startup[0]
