"""Sessions remember how the user signed in (RFC 8176 ``amr``), for MFA (#15).

The MFA tables themselves came with 0008; this adds ``sessions.amr``, a JSON
array of methods. Sessions that existed before were signed in with a password.

Revision ID: 0011
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``sessions.amr`` (every existing session: ``["pwd"]``)."""
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("amr", sa.Text(), nullable=False, server_default='["pwd"]'))


def downgrade() -> None:
    """Drop ``sessions.amr``."""
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("amr")
