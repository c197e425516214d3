"""Bind a public client's refresh family to its DPoP key (#16, RFC 9449 section 5).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03

(The lead re-chains it at merge.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """``refresh_families.dpop_jkt``: the RFC 7638 thumbprint (43 characters) of
    the key a DPoP-bound family's refreshes must be signed with; NULL when unbound."""
    with op.batch_alter_table("refresh_families") as batch:
        batch.add_column(sa.Column("dpop_jkt", sa.String(64), nullable=True))


def downgrade() -> None:
    """Drop the key binding."""
    with op.batch_alter_table("refresh_families") as batch:
        batch.drop_column("dpop_jkt")
