"""Create the wave-2 tables: the outbox, multi-factor sign-in, the OAuth code flow.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def _user_id(*, nullable: bool = False) -> sa.Column[str]:
    return sa.Column("user_id", sa.String(36), nullable=nullable)


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    """Rows are deleted with their user."""
    return sa.ForeignKeyConstraint(
        ["user_id"], ["users.id"], name=f"fk_{table}_user_id_users", ondelete="CASCADE"
    )


def _outbox() -> None:
    op.create_table(
        "outbox_jobs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_expiry", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_jobs"),
    )
    op.create_index(
        "ix_outbox_jobs_state_next_attempt_at", "outbox_jobs", ["state", "next_attempt_at"]
    )
    op.create_index("ix_outbox_jobs_state_updated_at", "outbox_jobs", ["state", "updated_at"])


def _mfa() -> None:
    op.create_table(
        "mfa_totp",
        _user_id(),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("sealed_secret", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("confirmed_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("user_id", "state", name="pk_mfa_totp"),
        _user_fk("mfa_totp"),
    )
    op.create_table(
        "mfa_totp_used",
        _user_id(),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "step", name="pk_mfa_totp_used"),
        _user_fk("mfa_totp_used"),
    )
    op.create_index("ix_mfa_totp_used_expires_at", "mfa_totp_used", ["expires_at"])
    op.create_table(
        "mfa_recovery_codes",
        _user_id(),
        sa.Column("code_hash", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "code_hash", name="pk_mfa_recovery_codes"),
        _user_fk("mfa_recovery_codes"),
    )
    op.create_table(
        "mfa_challenges",
        sa.Column("token_hash", sa.String(64), nullable=False),
        _user_id(),
        sa.Column("binding_hash", sa.String(64), nullable=False),
        sa.Column("methods", sa.Text(), nullable=False),
        sa.Column("amr", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_mfa_challenges"),
        _user_fk("mfa_challenges"),
    )
    op.create_index("ix_mfa_challenges_user_id", "mfa_challenges", ["user_id"])
    op.create_index("ix_mfa_challenges_expires_at", "mfa_challenges", ["expires_at"])
    op.create_table(
        "webauthn_challenges",
        sa.Column("challenge_hash", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        _user_id(nullable=True),
        sa.Column("require_uv", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("challenge_hash", name="pk_webauthn_challenges"),
        _user_fk("webauthn_challenges"),
    )
    op.create_index("ix_webauthn_challenges_user_id", "webauthn_challenges", ["user_id"])
    op.create_index("ix_webauthn_challenges_expires_at", "webauthn_challenges", ["expires_at"])
    op.create_table(
        "webauthn_credentials",
        sa.Column("id", sa.LargeBinary(), nullable=False),
        _user_id(),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_used_at", sa.Float(), nullable=True),
        sa.Column("transports", sa.Text(), nullable=False),
        sa.Column("backup_eligible", sa.Boolean(), nullable=False),
        sa.Column("backed_up", sa.Boolean(), nullable=False),
        sa.Column("aaguid", sa.String(36), nullable=False),
        sa.Column("attachment", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webauthn_credentials"),
        _user_fk("webauthn_credentials"),
    )
    op.create_index("ix_webauthn_credentials_user_id", "webauthn_credentials", ["user_id"])


def _oauth() -> None:
    op.create_table(
        "oauth_codes",
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("grant_id", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        _user_id(),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("nonce", sa.Text(), nullable=True),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("auth_time", sa.Float(), nullable=False),
        sa.Column("amr", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.Column("family_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("code_hash", name="pk_oauth_codes"),
        sa.UniqueConstraint("grant_id", name="uq_oauth_codes_grant_id"),
        _user_fk("oauth_codes"),
    )
    op.create_index("ix_oauth_codes_user_id", "oauth_codes", ["user_id"])
    op.create_index("ix_oauth_codes_expires_at", "oauth_codes", ["expires_at"])
    op.create_table(
        "oauth_par_requests",
        sa.Column("request_uri_hash", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("request_uri_hash", name="pk_oauth_par_requests"),
    )
    op.create_index("ix_oauth_par_requests_expires_at", "oauth_par_requests", ["expires_at"])
    op.create_table(
        "oauth_consents",
        _user_id(),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("granted_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "client_id", name="pk_oauth_consents"),
        _user_fk("oauth_consents"),
    )
    op.create_index("ix_oauth_consents_client_id", "oauth_consents", ["client_id"])


def upgrade() -> None:
    """The outbox queue (no user link); TOTP factors, used steps, recovery-code
    hashes, mfa_token challenges, WebAuthn challenges and passkeys; authorization
    codes, PAR requests and consents. Everything keyed by a user is deleted with
    it; secrets are stored only hashed or sealed."""
    _outbox()
    _mfa()
    _oauth()


_TABLES = (
    "oauth_consents",
    "oauth_par_requests",
    "oauth_codes",
    "webauthn_credentials",
    "webauthn_challenges",
    "mfa_challenges",
    "mfa_recovery_codes",
    "mfa_totp_used",
    "mfa_totp",
    "outbox_jobs",
)


def downgrade() -> None:
    """Drop the wave-2 tables (their indexes go with them)."""
    for table in _TABLES:
        op.drop_table(table)
