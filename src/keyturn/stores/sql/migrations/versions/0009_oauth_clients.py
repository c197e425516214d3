"""Give OAuth clients the wave-2 model: type, redirect URIs, grants, OIDC fields.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

_COLUMNS = (
    "first_party",
    "redirect_uris",
    "post_logout_redirect_uris",
    "grant_types",
    "backchannel_logout_uri",
    "id_token_alg",
)


def upgrade() -> None:
    """Add the SPEC "Clients" fields to ``oauth_clients``. A client registered
    before this revision gets no redirect URIs, is not first-party, and keeps
    ``grant_types`` NULL, which means the wave-1 grants (password and refresh):
    it keeps working without being registered again."""
    with op.batch_alter_table("oauth_clients") as batch:
        batch.add_column(
            sa.Column("first_party", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("redirect_uris", sa.Text(), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("post_logout_redirect_uris", sa.Text(), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("grant_types", sa.Text(), nullable=True))
        batch.add_column(sa.Column("backchannel_logout_uri", sa.Text(), nullable=True))
        batch.add_column(sa.Column("id_token_alg", sa.String(8), nullable=True))


def downgrade() -> None:
    """Drop the wave-2 client fields."""
    with op.batch_alter_table("oauth_clients") as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
