"""Run the keyturn app under uvicorn: what ``keyturn serve`` does.

With ``--workers N > 1`` uvicorn starts fresh processes that import
:func:`app_from_environment`; the already-validated settings travel to them in
an environment variable of the server's own process tree.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from keyturn.settings import Settings
from keyturn.stores.factory import open_storage
from keyturn.tls import ensure_self_signed_certificate
from keyturn.web.app import create_app

_SETTINGS_VARIABLE = "_KEYTURN_SERVE_SETTINGS"


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
    """The app for one uvicorn worker process (``--workers`` > 1)."""
    settings = Settings(**json.loads(os.environ[_SETTINGS_VARIABLE]))
    return create_app(settings)


async def _preflight(settings: Settings, announce: Callable[[str], None]) -> None:
    """Open the database once before serving: migrate a SQLite file, refuse an
    un-migrated PostgreSQL, fail fast on an unreachable one (one clear line).
    Also resolve the key-encryption key (saying once if it was just generated) and
    load the signing keys, so a wrong key fails here and workers find a key."""
    from keyturn.clock import SystemClock
    from keyturn.key_encryption import resolve_kek
    from keyturn.keyring_manager import KeyManager

    storage = await open_storage(settings)
    try:
        kek = resolve_kek(settings)
        if kek.created is not None:
            announce(f"generated a key-encryption key in {kek.created}; back it up")
        await KeyManager(storage.keys, kek.encryptor, settings, SystemClock()).load()
    finally:
        await storage.close()


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
        "proxy_headers": False,
        "log_level": "info",
    }
    if tls:
        options["ssl_certfile"], options["ssl_keyfile"] = tls
    if settings.workers > 1:
        os.environ[_SETTINGS_VARIABLE] = _settings_to_json(settings)
        uvicorn.run(
            "keyturn.web.server:app_from_environment",
            factory=True,
            workers=settings.workers,
            **options,
        )
    else:
        uvicorn.run(create_app(settings), **options)
