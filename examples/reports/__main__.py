"""``python -m examples.reports [--port P] [--issuer URL] [--client-file FILE]``.

Signature-only by default, and without browser sign-in. A confidential client
of the notes app turns on both strict mode (revocations honoured through the
issuer's introspection endpoint) and "Sign in with keyturn" (OpenID Connect,
signed out by back-channel logout): ``--client-file`` names the JSON that
``python -m examples.reports.register_client`` writes (``keyturn client add
reports --confidential --json`` with the redirect, post-logout and back-channel
logout URIs of ``--url``), or set ``REPORTS_CLIENT_ID`` and
``REPORTS_CLIENT_SECRET``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import uvicorn

from examples.reports.app import create_app
from examples.reports.signin import SignInSettings


def introspection_credentials(client_file: Path | None) -> tuple[str, str] | None:
    """``(client_id, client_secret)`` from the file or the environment, or None."""
    if client_file is not None:
        try:
            created = json.loads(client_file.read_text())
            return str(created["client_id"]), str(created["client_secret"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            sys.exit(f"reports: cannot read client credentials from {client_file}: {exc}")
    client_id = os.environ.get("REPORTS_CLIENT_ID")
    secret = os.environ.get("REPORTS_CLIENT_SECRET")
    if client_id and secret:
        return client_id, secret
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.reports", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8001, help="port to listen on (8001)")
    parser.add_argument(
        "--issuer",
        default=os.environ.get("REPORTS_ISSUER", "http://127.0.0.1:8000"),
        help="the notes app's issuer URL (REPORTS_ISSUER, default http://127.0.0.1:8000)",
    )
    parser.add_argument("--audience", help="required aud (default: the issuer URL)")
    parser.add_argument(
        "--url",
        default=os.environ.get("REPORTS_URL"),
        help="this service's public URL, as registered (REPORTS_URL, default http://HOST:PORT)",
    )
    parser.add_argument(
        "--client-file", type=Path, help="confidential client JSON (strict mode and sign-in)"
    )
    parser.add_argument(
        "--session-secret",
        default=os.environ.get("REPORTS_SESSION_SECRET"),
        help="signs the session cookie (REPORTS_SESSION_SECRET; default: random at start)",
    )
    parser.add_argument(
        "--introspection-cache-ttl",
        type=float,
        default=2.0,
        help="seconds an introspection answer is reused (0..5, default 2)",
    )
    args = parser.parse_args(argv)

    introspection = introspection_credentials(args.client_file)
    url = (args.url or f"http://{args.host}:{args.port}").rstrip("/")
    sign_in = None
    if introspection is not None:
        client_id, secret = introspection
        sign_in = SignInSettings(args.issuer, client_id, secret, base_url=url)
    app = create_app(
        args.issuer,
        audience=args.audience,
        introspection=introspection,
        introspection_cache_ttl=args.introspection_cache_ttl,
        sign_in=sign_in,
        session_secret=args.session_secret,
    )
    log = logging.getLogger("reports")  # sign-in and back-channel logout events
    log.setLevel(logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    log.addHandler(handler)
    mode = "strict (introspection)" if introspection else "signature-only"
    signing = "sign-in with keyturn at /" if sign_in else "no browser sign-in"
    print(
        f"reports: {url}/reports/summary trusting {args.issuer}, {mode}, {signing}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, server_header=False, log_level="info")


if __name__ == "__main__":
    main()
