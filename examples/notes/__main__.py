"""``python -m examples.notes [--host H] [--port P] [--data-dir DIR]``.

keyturn's own settings come from ``KEYTURN_*`` variables as usual (for example
``KEYTURN_REVOCATION_MODE``); by default its database is ``DIR/keyturn.db`` and
the notes live in ``DIR/notes.sqlite``, and keyturn's password grant may hand out
the notes and reports scopes besides the standard ones (``--default-scopes``,
unless ``KEYTURN_DEFAULT_SCOPES`` says otherwise); the password grant is on
for the CLI client unless ``KEYTURN_PASSWORD_GRANT`` says otherwise. The
issuer, which the ``reports`` service must be told, is ``http://HOST:PORT``
unless ``KEYTURN_ISSUER`` says otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import uvicorn

from examples.notes.app import create_app
from keyturn import load_settings
from keyturn.errors import ConfigurationError
from keyturn.settings import DEFAULT_SCOPES

#: What tokens from this issuer may carry: the standard scopes, the notes API's,
#: and those of the reports service that trusts this issuer. keyturn refuses any
#: other (400 invalid_scope), so an API's scope check means something.
SCOPES = (*DEFAULT_SCOPES, "notes:read", "notes:write", "reports:read", "reports:write")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.notes", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("notes-data"),
        help="directory of the SQLite files (./notes-data)",
    )
    args = parser.parse_args(argv)

    args.data_dir.mkdir(parents=True, exist_ok=True)
    overrides: dict[str, Any] = {"host": args.host, "port": args.port}
    if "KEYTURN_DATABASE_URL" not in os.environ:
        overrides["database_url"] = f"sqlite+aiosqlite:///{args.data_dir / 'keyturn.db'}"
    if "KEYTURN_DEFAULT_SCOPES" not in os.environ:
        overrides["default_scopes"] = list(SCOPES)
    if "KEYTURN_PASSWORD_GRANT" not in os.environ:
        # The notes CLI client (examples/notes/client.py) still signs in with the
        # password grant, which keyturn leaves off by default (#12); it moves to
        # the browser with a loopback redirect and PKCE (RFC 8252) in #12 part B.
        overrides["password_grant"] = True
    try:
        settings = load_settings(**overrides)
    except ConfigurationError as exc:
        sys.exit(f"notes: {exc.detail}")
    app = create_app(settings, args.data_dir / "notes.sqlite")
    print(
        f"notes: http://{args.host}:{args.port}/ (issuer {settings.public_issuer})",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, server_header=False, log_level="info")


if __name__ == "__main__":
    main()
