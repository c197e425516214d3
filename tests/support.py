"""Small helpers every kind of test shares: reading ``Set-Cookie`` headers, and
the result of an in-process ``keyturn`` run (the ``run`` fixture is in
tests/conftest.py)."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx

from keyturn.web.authn.cookies import SESSION_COOKIE

__all__ = ["Result", "Run", "serve_in_thread", "session_cookie", "set_cookies"]


@dataclass
class Result:
    """What one in-process ``keyturn`` run produced."""

    exit_code: int
    stdout: str
    stderr: str


#: The ``run`` fixture: ``run(*args, stdin="")`` runs ``keyturn ARGS`` in process.
Run = Callable[..., Result]


def set_cookies(response: httpx.Response) -> dict[str, tuple[str, dict[str, str]]]:
    """Every ``Set-Cookie`` as name -> (value, attributes with lower-cased names)."""
    cookies: dict[str, tuple[str, dict[str, str]]] = {}
    for header in response.headers.get_list("set-cookie"):
        first, *attributes = (part.strip() for part in header.split(";"))
        name, _, value = first.partition("=")
        parsed: dict[str, str] = {}
        for attribute in attributes:
            key, _, attribute_value = attribute.partition("=")
            parsed[key.lower()] = attribute_value
        cookies[name.strip()] = (value, parsed)
    return cookies


def session_cookie(response: httpx.Response) -> str:
    """The non-empty session cookie a response sets (httpx keeps ``Secure``
    cookies off plain-HTTP requests, so tests of a real server send it by hand).

    Raises:
        AssertionError: the response sets none.
    """
    value = set_cookies(response).get(SESSION_COOKIE, ("", {}))[0]
    if not value:
        raise AssertionError(f"no session cookie in {response.headers.get_list('set-cookie')}")
    return value


@contextlib.contextmanager
def serve_in_thread(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served on a free 127.0.0.1 port from a thread, for as long as the
    block runs: a browser test's second origin (a SPA, an app). Yields its origin."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True  # a keep-alive connection left open never blocks exit
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
