"""``keyturn serve`` as a real process, hardened after the audit of issue #10:
request heads are bounded (item 8), credentials in URLs never reach a log line
and an access token sent in one is revoked (item 9), and ``--workers`` get
their secrets without an environment variable (item 10f)."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import time
from pathlib import Path

import httpx
import pytest
from tests.live import LiveServer, LiveServers, run_keyturn

PASSWORD = "correct horse battery staple"
EMAIL = "ada@example.com"


def raw_request(port: int, head: bytes, *, timeout: float = 10.0) -> bytes | None:
    """Send ``head`` on a fresh connection and read until the server closes it;
    the bytes received, or None when the server reset the connection before any
    answer could be read (it refused to take the rest)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        # Closed on us mid-send: the answer may still be readable.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            return received or None
        return received


def status_of(answer: bytes | None) -> int | None:
    if not answer:
        return None
    return int(answer.split(b" ", 2)[1])


def get_head(*headers: bytes) -> bytes:
    lines = [b"GET /livez HTTP/1.1", b"Host: 127.0.0.1", *headers, b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


# --- item 8: the request head is bounded ------------------------------------------------------


def test_an_oversized_request_head_is_431_without_a_proxy(live_server: LiveServers) -> None:
    """A head over ``--max-header-bytes`` gets 431 headers_too_large (or the
    connection closed while it is still arriving, for 8 MB); more header fields
    than ``--max-header-count`` get 431 too; the server keeps serving (#10 item 8)."""
    server = live_server("--max-header-bytes", "8192", "--max-header-count", "40")
    port = server.port
    fits = raw_request(port, get_head(b"X-Big: " + b"a" * 7000))
    assert status_of(fits) == 200

    too_big = raw_request(port, get_head(b"X-Big: " + b"a" * 9000))
    assert status_of(too_big) == 431, too_big
    assert too_big is not None and b'"error": "headers_too_large"' in too_big

    long_url = b"GET /livez?" + b"q" * 9000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert status_of(raw_request(port, long_url)) == 431

    started = time.monotonic()
    huge = raw_request(port, get_head(b"X-Huge: " + b"a" * (8 * 1024 * 1024)))
    assert status_of(huge) in (431, None), huge  # never a 200
    assert time.monotonic() - started < 10

    many = raw_request(port, get_head(*(b"X-H%d: 1" % i for i in range(50))))
    assert status_of(many) == 431, many
    assert many is not None and b"headers_too_large" in many
    enough = raw_request(port, get_head(*(b"X-H%d: 1" % i for i in range(30))))
    assert status_of(enough) == 200

    with server.client() as client:
        assert client.get("/livez").status_code == 200


def dribble(port: int, pieces: list[bytes], *, pause: float = 0.02) -> bytes | None:
    """Send ``pieces`` one by one with a pause between them (so the server reads
    them separately), then read the answer; None if the connection was reset."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for piece in pieces:
                sock.sendall(piece)
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
        return received or None


def test_a_head_spread_over_many_reads_is_bounded_too(live_server: LiveServers) -> None:
    """A header dribbled in 1 KB pieces is cut off once the head passes the limit;
    a head within it that arrives in pieces, followed by a 60 KB body, is served
    (#10 item 8)."""
    server = live_server("--max-header-bytes", "8192")
    start = b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: "
    endless = dribble(server.port, [start] + [b"a" * 1024] * 24)
    assert status_of(endless) in (431, None), endless

    body = b"x" * 60_000
    head = (
        b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nX-Pad: " + b"p" * 6000 + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    pieces = [head[i : i + 1000] for i in range(0, len(head) - 200, 1000)]
    pieces.append(head[len(b"".join(pieces)) :] + body)  # the end of the head, then the body
    served = dribble(server.port, pieces)
    # The app read it and answered (the body is not a sign-in): keyturn's JSON 400.
    assert status_of(served) == 400, served
    assert served is not None and b'"error":"invalid_request"' in served, served


def test_the_default_head_bound_is_32_kib(live_server: LiveServers) -> None:
    """Out of the box a 40 KB header is 431 and a 16 KB one passes (#10 item 8)."""
    server = live_server()
    assert status_of(raw_request(server.port, get_head(b"X-Big: " + b"a" * 40_000))) == 431
    assert status_of(raw_request(server.port, get_head(b"X-Big: " + b"a" * 16_000))) == 200


# --- item 9: credentials in URLs ----------------------------------------------------------------

#: One value per sensitive parameter, each unique so a leak is unmistakable.
SECRETS = {
    "access_token": "leak-access-7f3a",
    "code": "leak-code-91bd",
    "token": "leak-token-c2e4",
    "refresh_token": "leak-refresh-5d10",
    "id_token_hint": "leak-hint-a8f2",
    "client_secret": "leak-secret-3e77",
}


def wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)


@pytest.mark.parametrize("workers", [1, 2], ids=["one-worker", "two-workers"])
def test_credentials_in_urls_are_redacted_from_every_log_line(
    live_server: LiveServers, workers: int
) -> None:
    """The access log line of a request, and the error-log line of a WebSocket
    handshake, show ``[redacted]`` for every credential parameter and keep the
    others, with one worker and with several (#10 item 9)."""
    server = live_server("--workers", str(workers), timeout=40)
    query = "&".join(f"{name}={value}" for name, value in SECRETS.items()) + "&page=visible-2"
    with server.client() as client:
        assert client.get(f"/livez?{query}").status_code == 200
        encoded_name = client.get(f"/auth/whoami?ACCESS%5FTOKEN={SECRETS['access_token']}")
        assert encoded_name.status_code == 401
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with (
        pytest.raises(InvalidStatus),
        connect(f"ws://127.0.0.1:{server.port}/no-socket?{query}", open_timeout=5),
    ):
        pass
    wait_for(lambda: "WebSocket" in server.stderr and "ACCESS%5FTOKEN" in server.stdout)
    logs = server.stdout + server.stderr
    for name, value in SECRETS.items():
        assert value not in logs, name
        assert f"{name}=[redacted]" in server.stdout
    assert "ACCESS%5FTOKEN=[redacted]" in server.stdout
    assert "page=visible-2" in server.stdout
    handshake = [line for line in server.stderr.splitlines() if "WebSocket /no-socket" in line]
    assert handshake and "access_token=[redacted]" in handshake[0], server.stderr


def test_a_token_sent_in_the_query_is_dead_afterwards(live_server: LiveServers) -> None:
    """An access token sent as ``?access_token=`` is refused, and then refused as
    a header too: it leaked, so it was revoked (#10 item 9)."""
    server = live_server("--password-grant")  # the token comes from the password grant
    server.add_user(EMAIL, PASSWORD)
    with server.client() as client:
        grant = client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": EMAIL, "password": PASSWORD},
        )
        token = grant.json()["access_token"]
        header = {"Authorization": f"Bearer {token}"}
        assert client.get("/auth/whoami", headers=header).status_code == 200
        assert client.get("/auth/whoami", params={"access_token": token}).status_code == 401
        after = client.get("/auth/whoami", headers=header)
    assert after.status_code == 401
    assert after.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert token not in server.stdout + server.stderr


# --- item 10f: secrets reach --workers without the environment --------------------------------


def children(pid: int) -> list[int]:
    """The ids of the processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {name: value for name, _, value in pairs}


@pytest.mark.postgres
def test_workers_get_the_kek_and_database_password_without_the_environment(
    live_server: LiveServers, postgres_database_url: str
) -> None:
    """With ``--workers 2``, no worker's environment (or command line) holds the
    key-encryption key or the database password, even when the operator passed
    the key as ``KEYTURN_KEY_ENCRYPTION_KEY``; the workers read them from a 0600
    file in a private directory, removed when the server stops; both serve, with
    the same settings (#10 item 10f)."""
    kek = os.environ["KEYTURN_KEY_ENCRYPTION_KEY"]
    password = httpx.URL(postgres_database_url.replace("+asyncpg", "")).password
    assert password
    env = {
        "KEYTURN_KEY_ENCRYPTION_KEY": kek,
        "KEYTURN_ACCESS_TOKEN_TTL": "123",
        "KEYTURN_PASSWORD_GRANT": "true",  # the workers' tokens come from the password grant
    }
    migrated = run_keyturn("migrate", "--database-url", postgres_database_url)
    assert migrated.returncode == 0, migrated.stderr
    server: LiveServer = live_server(
        "--workers", "2", database_url=postgres_database_url, env=env, timeout=40
    )
    assert server.process is not None
    wait_for(lambda: server.stderr.count("Application startup complete.") >= 2, timeout=20)
    assert server.stderr.count("Application startup complete.") == 2, server.stderr
    workers = [
        pid
        for pid in children(server.process.pid)
        if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
    ]
    assert len(workers) == 2, workers

    settings_files = set()
    for pid in workers:
        environment = environ_of(pid)
        blob = "\0".join(f"{name}={value}" for name, value in environment.items())
        command = Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
        assert kek not in blob and kek not in command
        assert password not in blob and password not in command
        assert not any(name.startswith("KEYTURN_") for name in environment)
        settings_files.add(environment["_KEYTURN_SERVE_SETTINGS_FILE"])
    (settings_file,) = settings_files
    path = Path(settings_file)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    server.add_user(EMAIL, PASSWORD)
    for _ in range(12):
        with server.client() as client:  # a fresh connection each time, either worker
            grant = client.post(
                "/oauth/token",
                data={"grant_type": "password", "username": EMAIL, "password": PASSWORD},
            )
            assert grant.status_code == 200, grant.text
            assert grant.json()["expires_in"] == 123
            jwks = client.get("/.well-known/jwks.json").json()
            # The same KEK opened the same keys: access-token and ID-token key.
            assert sorted(key["alg"] for key in jwks["keys"]) == ["ES256", "RS256"]
    server.stop()
    assert not path.exists() and not path.parent.exists()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("GET /cb?code=abc&state=xyz HTTP/1.1", "GET /cb?code=[redacted]&state=xyz HTTP/1.1"),
        (
            "/x?Access_Token=a&access%5Ftoken=b",
            "/x?Access_Token=[redacted]&access%5Ftoken=[redacted]",
        ),
        ("/x?token=&client_secret=s#frag", "/x?token=[redacted]&client_secret=[redacted]#frag"),
        ("/x?tokens=keep&mycode=keep", "/x?tokens=keep&mycode=keep"),
        ("no query, code=1", "no query, code=1"),
    ],
)
def test_redact_query(line: str, expected: str) -> None:
    """Exactly the credential parameters are redacted, whatever their case or
    percent-encoding; lookalike names and text outside a query are kept (#10 item 9)."""
    from keyturn.web.access_log import redact_query

    assert redact_query(line) == expected
