"""Alembic environment for keyturn's schema.

keyturn runs migrations itself (:mod:`keyturn.stores.sql.migrate`), handing over a
synchronous connection obtained with ``AsyncConnection.run_sync`` in
``config.attributes["connection"]``. Running ``alembic`` by hand also works: the
URL then comes from ``sqlalchemy.url`` or ``KEYTURN_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from sqlalchemy.engine import Connection

from keyturn.stores.sql import create_engine_for, metadata

config = context.config


def _configure_and_run(connection: Connection) -> None:
    applied = config.attributes.get("applied")

    def record(
        ctx: MigrationContext,
        step: MigrationInfo,
        heads: Collection[Any],
        run_args: Mapping[str, Any],
    ) -> None:
        if applied is not None and step.up_revision_id and step.is_upgrade:
            applied.append(step.up_revision_id)

    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        on_version_apply=record,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    engine = create_engine_for(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_configure_and_run)
    finally:
        await engine.dispose()


def run() -> None:
    """Migrate over the handed-in connection, or open one from the configured URL."""
    if context.is_offline_mode():
        raise RuntimeError("keyturn migrations run online only")
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("KEYTURN_DATABASE_URL")
    if not url:
        raise RuntimeError("set sqlalchemy.url or KEYTURN_DATABASE_URL")
    asyncio.run(_run_with_own_engine(url))


run()
