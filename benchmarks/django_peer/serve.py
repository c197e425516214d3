"""Migrate a fresh SQLite file, seed one user, and serve the Django peer.

Run ``python benchmarks/django_peer/serve.py --port P --database FILE --email E
--password P [--server gunicorn|uvicorn] [--threads N]``:

* ``gunicorn`` (default): WSGI, one ``gthread`` worker with ``--threads`` threads
  (keep-alive needs a threaded worker), access log off, errors only. Two threads
  by default: of 1, 2, 4 and 8 they served the most whoami requests here (more
  contend for the GIL). This is Django's fastest setup measured here: uvicorn
  (ASGI, sync views through ``sync_to_async``) served less than half as many.
* ``uvicorn``: ASGI (Django runs the sync views in its thread), one worker,
  ``access_log=False``, uvloop and httptools when installed.

Both listen on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/


def seed(email: str, password: str) -> None:
    """Create the tables and the one user (``username`` = ``email``)."""
    import django
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    get_user_model().objects.create_user(username=email, email=email, password=password)


def serve_gunicorn(port: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication

    class Peer(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options: dict[str, Any] = {
                "bind": f"127.0.0.1:{port}",
                "workers": 1,
                "worker_class": "gthread",
                "threads": threads,
                "keepalive": 30,
                "accesslog": None,
                "errorlog": "-",
                "loglevel": "warning",
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from django_peer.wsgi import application

            return application

    Peer().run()


def serve_uvicorn(port: int) -> None:
    import uvicorn

    uvicorn.run(
        "django_peer.asgi:application",
        host="127.0.0.1",
        port=port,
        workers=1,
        access_log=False,
        log_level="warning",
        server_header=False,
        lifespan="off",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True, help="SQLite file (created)")
    parser.add_argument("--email", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--server", choices=("gunicorn", "uvicorn"), default="gunicorn")
    parser.add_argument("--threads", type=int, default=2, help="gunicorn gthread threads")
    args = parser.parse_args()
    os.environ["DJANGO_SETTINGS_MODULE"] = "django_peer.settings"
    os.environ["DJANGO_PEER_DATABASE"] = str(Path(args.database).resolve())
    seed(args.email, args.password)
    if args.server == "gunicorn":
        serve_gunicorn(args.port, args.threads)
    else:
        serve_uvicorn(args.port)


if __name__ == "__main__":
    main()
