"""Register the reports service as a confidential client of the notes app.

``python -m examples.reports.register_client [--data-dir notes-data] [--out FILE]
[--reports-url http://127.0.0.1:8001]``

An operator step, run where the notes app's database is: it runs ::

    keyturn client add reports --confidential --first-party --json \
        --redirect-uri URL/auth/callback \
        --post-logout-redirect-uri URL/auth/signed-out \
        --backchannel-logout-uri URL/auth/backchannel-logout

against that database (``URL`` is where reports is reached; loopback ``http``
is accepted for a local run) and writes the answer, ``{"client_id": ...,
"client_secret": ...}`` plus ``reports_url``, to ``FILE`` (default
``DIR/reports-client.json``) readable by its owner only. The secret is shown
once and stored by keyturn only as a hash. The reports service then reads the
file (``--client-file``): it signs its users in with it (OpenID Connect) and
authenticates to ``/oauth/introspect`` with it. First-party: the operator runs
both apps, so keyturn shows no consent screen.

An existing file is kept (run with ``--force`` for a new client); the reports
service itself never touches the database.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


def keyturn_command() -> list[str]:
    """The ``keyturn`` script next to this interpreter, or the one on ``PATH``."""
    script = Path(sys.executable).with_name("keyturn")
    if script.is_file():
        return [str(script)]
    found = shutil.which("keyturn")
    if found is None:
        sys.exit("register_client: the keyturn command is not installed")
    return [found]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m examples.reports.register_client", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data-dir", type=Path, default=Path("notes-data"))
    parser.add_argument("--database-url", help="the notes app's keyturn database URL")
    parser.add_argument("--out", type=Path, help="where to write the JSON")
    parser.add_argument("--name", default="reports", help="the client's name (reports)")
    parser.add_argument(
        "--reports-url",
        default=os.environ.get("REPORTS_URL", "http://127.0.0.1:8001"),
        help="where reports is reached (REPORTS_URL, default http://127.0.0.1:8001)",
    )
    parser.add_argument("--force", action="store_true", help="register a new client anyway")
    args = parser.parse_args(argv)

    out: Path = args.out or args.data_dir / "reports-client.json"
    reports_url = args.reports_url.rstrip("/")
    if out.exists() and not args.force:
        print(f"register_client: {out} exists; keeping it", file=sys.stderr)
        if registered_url(out) != reports_url:
            print(
                f"register_client: that client is not registered for {reports_url}, so "
                "sign-in there will fail; run with --force to register a new one",
                file=sys.stderr,
            )
        return 0
    database_url = args.database_url or os.environ.get("KEYTURN_DATABASE_URL")
    if database_url is None:
        database_url = f"sqlite+aiosqlite:///{args.data_dir / 'keyturn.db'}"
    command = [
        *keyturn_command(),
        "client",
        "add",
        args.name,
        "--confidential",
        "--first-party",
        "--redirect-uri",
        f"{reports_url}/auth/callback",
        "--post-logout-redirect-uri",
        f"{reports_url}/auth/signed-out",
        "--backchannel-logout-uri",
        f"{reports_url}/auth/backchannel-logout",
        "--json",
        "--database-url",
        database_url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        return result.returncode
    created = {**json.loads(result.stdout), "reports_url": reports_url}
    out.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # also when --force overwrites an older file
    with os.fdopen(descriptor, "w") as file:
        json.dump(created, file)
        file.write("\n")
    print(f"register_client: client {created['client_id']} written to {out}", file=sys.stderr)
    return 0


def registered_url(path: Path) -> str | None:
    """The ``reports_url`` an existing file was registered for, if it says."""
    try:
        found = json.loads(path.read_text()).get("reports_url")
    except (OSError, ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


if __name__ == "__main__":
    sys.exit(main())
