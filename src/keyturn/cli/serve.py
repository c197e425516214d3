"""``keyturn serve`` and ``keyturn migrate``."""

from __future__ import annotations

import asyncio

import click

from keyturn.cli.console import note, stdout
from keyturn.cli.options import settings_options
from keyturn.settings import Settings


@click.command()
@settings_options
def serve(settings: Settings) -> None:
    """Run the auth server (SQLite in ./keyturn.db unless --database-url)."""
    from keyturn.web.server import run

    run(settings, announce=note)


@click.command()
@settings_options
def migrate(settings: Settings) -> None:
    """Apply database migrations (needed once per release on PostgreSQL)."""
    from keyturn.stores.sql.migrate import upgrade

    applied = asyncio.run(upgrade(settings.database_url))
    if applied:
        stdout.print(f"applied {', '.join(applied)} to {settings.safe_database_url}")
    else:
        stdout.print(f"{settings.safe_database_url} is up to date")
