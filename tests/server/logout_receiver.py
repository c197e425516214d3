"""A real HTTP server on loopback that plays a relying party's back-channel
logout endpoint: it records each POSTed ``logout_token`` and answers with the
next status of a script (then 200)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class LogoutReceiver:
    """What the receiver saw; ``statuses`` are answered in order, then 200."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.tokens: list[str] = []
        self.content_types: list[str] = []
        self.lock = threading.Lock()
        self.port = 0

    @property
    def uri(self) -> str:
        """The back-channel logout URI to register."""
        return f"http://127.0.0.1:{self.port}/backchannel"


@contextmanager
def logout_receiver(*statuses: int) -> Iterator[LogoutReceiver]:
    """Run a :class:`LogoutReceiver` on 127.0.0.1 (a free port) for the block."""
    receiver = LogoutReceiver(list(statuses))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = parse_qs(self.rfile.read(length).decode())
            with receiver.lock:
                receiver.tokens.append(body.get("logout_token", [""])[0])
                receiver.content_types.append(self.headers.get("Content-Type", ""))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
