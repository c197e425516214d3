"""Give OAuth clients their own scope allowlist.

Revision ID: 0007
Revises: 0006
Create Date: 2025-01-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """``oauth_clients.allowed_scopes``: space-separated scope values. Clients
    registered before this revision keep NULL: the server's ``--default-scopes``
    apply to them, so they keep working without being registered again."""
    with op.batch_alter_table("oauth_clients") as batch:
        batch.add_column(sa.Column("allowed_scopes", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop the per-client scopes."""
    with op.batch_alter_table("oauth_clients") as batch:
        batch.drop_column("allowed_scopes")
