"""Run the keyturn app under uvicorn: what ``keyturn serve`` does.

uvicorn runs with keyturn's bound on the request head
(:mod:`keyturn.web.protocol`, ``--max-header-bytes``) and with credentials in
URLs redacted from its logs (:mod:`keyturn.web.access_log`).

With ``--workers N > 1`` uvicorn spawns fresh processes that import
:func:`app_from_environment`. The already-validated settings, secrets included
(the key-encryption key, the database password), travel to them in a file
readable by this user only (0600, in a private 0700 temporary directory) that
lives as long as the server, since uvicorn restarts workers that die, and is
removed when it stops; only the file's path is in the workers' environment,
and the ``KEYTURN_*`` variables are left out of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from keyturn.settings import Settings
from keyturn.tls import ensure_self_signed_certificate
from keyturn.web.access_log import log_config
from keyturn.web.app import create_app

#: The path of the workers' settings file (never the settings themselves).
_SETTINGS_FILE_VARIABLE = "_KEYTURN_SERVE_SETTINGS_FILE"


def _settings_to_json(settings: Settings) -> str:
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, Path):
            value = str(value)
        values[name] = value
    return json.dumps(values)


def app_from_environment() -> FastAPI:
    """The app for one uvicorn worker process (``--workers`` > 1), from the
    settings file the serving process wrote (see the module doc)."""
    path = Path(os.environ[_SETTINGS_FILE_VARIABLE])
    settings = Settings(**json.loads(path.read_text(encoding="utf-8")))
    return create_app(settings)


@contextlib.contextmanager
def _settings_for_workers(settings: Settings) -> Iterator[None]:
    """Write the settings where spawned workers find them, for as long as the
    block runs: a 0600 file in a fresh 0700 directory, its path in this
    process's environment in place of every ``KEYTURN_*`` variable (a worker's
    environment is readable in ``/proc/<pid>/environ``, and the settings are
    complete without them). Everything is put back, and the directory
    removed, on the way out."""
    directory = Path(tempfile.mkdtemp(prefix="keyturn-serve-"))  # mode 0700
    try:
        path = directory / "settings.json"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(_settings_to_json(settings))
        hidden = {
            name: os.environ.pop(name) for name in list(os.environ) if name.startswith("KEYTURN_")
        }
        os.environ[_SETTINGS_FILE_VARIABLE] = str(path)
        try:
            yield
        finally:
            os.environ.pop(_SETTINGS_FILE_VARIABLE, None)
            os.environ.update(hidden)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _http_protocol() -> str:
    """uvicorn's ``http`` option: httptools with keyturn's head bound, or h11
    (which enforces ``h11_max_incomplete_event_size`` itself, answering 400)
    where httptools is not installed."""
    try:
        import httptools  # noqa: F401
    except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
        return "h11"
    return "keyturn.web.protocol:HeaderLimitedProtocol"


async def _preflight(settings: Settings, announce: Callable[[str], None]) -> None:
    """Open the database once before serving: migrate a SQLite file, refuse an
    un-migrated PostgreSQL, fail fast on an unreachable one (one clear line).
    Also resolve the key-encryption key (saying once if it was just generated) and
    load the signing keys, so a wrong key fails here and workers find a key: all
    through the composition root (:meth:`Keyturn.prepare
    <keyturn.runtime.Keyturn.prepare>`), which is the one place keys are loaded.
    The RS256 ID-token key is made here too (OpenID Connect), so the JWKS that
    relying parties cache holds it before the first ID token."""
    from keyturn.runtime import Keyturn

    keyturn = Keyturn(settings)
    try:
        await keyturn.prepare()
        await keyturn.keys.ensure("RS256")
        if keyturn.generated_kek_file is not None:
            announce(f"generated a key-encryption key in {keyturn.generated_kek_file}; back it up")
    finally:
        await keyturn.close()


def _tls_files(settings: Settings, announce: Callable[[str], None]) -> tuple[str, str] | None:
    if settings.tls_cert is not None and settings.tls_key is not None:
        return str(settings.tls_cert), str(settings.tls_key)
    if not settings.https:
        return None
    base = settings.sqlite_path.parent if settings.sqlite_path else Path.cwd()
    cert, key = ensure_self_signed_certificate(base / "keyturn-tls")
    announce(f"serving HTTPS with a self-signed certificate for localhost ({cert})")
    return str(cert), str(key)


def run(settings: Settings, *, announce: Callable[[str], None]) -> None:
    """Serve until interrupted.

    Raises:
        DatabaseNotMigrated: PostgreSQL needs ``keyturn migrate`` first.
        StoreUnavailable: the database cannot be reached.
    """
    asyncio.run(_preflight(settings, announce))
    tls = _tls_files(settings, announce)
    scheme = "https" if tls else "http"
    announce(
        f"serving on {scheme}://{settings.host}:{settings.port} "
        f"(database {settings.safe_database_url}, revocation mode {settings.revocation_mode})"
    )
    if settings.revocation_mode == "stateless":
        announce(
            "warning: revocation mode is stateless: access tokens stay valid until they "
            "expire even after sign-out or revocation"
        )
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "server_header": False,
        # X-Forwarded-Proto and -For are keyturn's to judge (--trusted-proxies).
        "proxy_headers": False,
        "log_level": "info",
        "log_config": log_config(),
        "http": _http_protocol(),
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }
    if tls:
        options["ssl_certfile"], options["ssl_keyfile"] = tls
    if settings.workers > 1:
        with _settings_for_workers(settings):
            uvicorn.run(
                "keyturn.web.server:app_from_environment",
                factory=True,
                workers=settings.workers,
                **options,
            )
    else:
        uvicorn.run(create_app(settings), **options)
