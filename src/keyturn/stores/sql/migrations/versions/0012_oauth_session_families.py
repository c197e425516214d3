"""Link refresh families to the browser session they came from (#12, code flow).

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-03

(#12 part B. The lead re-chains it after ``0009_oauth_clients`` at merge, or
folds it into that migration.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """``refresh_families.session_id``: the public handle of the browser session
    an authorization code was issued in (NULL for password-grant families), so
    ending the session ends its families with one indexed ``UPDATE``."""
    with op.batch_alter_table("refresh_families") as batch:
        batch.add_column(sa.Column("session_id", sa.String(64), nullable=True))
        batch.create_index("ix_refresh_families_session_id", ["session_id"])


def downgrade() -> None:
    """Drop the session link."""
    with op.batch_alter_table("refresh_families") as batch:
        batch.drop_index("ix_refresh_families_session_id")
        batch.drop_column("session_id")
