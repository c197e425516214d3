"""OpenID Connect: which clients received an ID token in which browser session (#13).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

(#13. The lead re-chains it at merge.) Back-channel logout reads and deletes
these rows when a session ends; nothing secret is stored (the session's public
handle, the client and user ids).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """``oidc_id_token_sessions``: (session_handle, client_id) primary key."""
    op.create_table(
        "oidc_id_token_sessions",
        sa.Column("session_handle", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("session_handle", "client_id"),
    )
    op.create_index(
        "ix_oidc_id_token_sessions_created_at", "oidc_id_token_sessions", ["created_at"]
    )


def downgrade() -> None:
    """Drop the table."""
    op.drop_index("ix_oidc_id_token_sessions_created_at", "oidc_id_token_sessions")
    op.drop_table("oidc_id_token_sessions")
