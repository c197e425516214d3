"""The tables, in one :data:`metadata`.

(Over 300 lines: every table of the database in one :data:`metadata`, one block
per store, so the schema the migrations must match is read in one place.)

The Alembic migrations in ``stores/sql/migrations`` create exactly these; a new
table goes here *and* into a new migration revision, and
``tests/unit/stores/test_migrations.py`` checks the two agree. One block per store.
"""

from __future__ import annotations

import sqlalchemy as sa

#: Constraint names are fixed so migrations (and SQLite batch mode) can find them.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("email_key", sa.String(320), nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("roles", sa.Text, nullable=False),  # JSON array of strings
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    # Mail (#14, migration 0010): has the user followed a link sent to ``email``?
    sa.Column("email_verified", sa.Boolean, nullable=False, server_default=sa.false()),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),  # SHA-256 hex of the secret ID
    sa.Column("handle", sa.String(32), nullable=False, unique=True),
    sa.Column(
        "user_id",
        sa.String(36),
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_seen_at", sa.Float, nullable=False),
    sa.Column("idle_timeout", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
    sa.Column("auth_time", sa.Float, nullable=False),
    sa.Column("remember", sa.Boolean, nullable=False),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.String(512), nullable=True),
    # JSON array of RFC 8176 methods (migration 0011_mfa).
    sa.Column("amr", sa.Text, nullable=False, server_default='["pwd"]'),
)

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("kid", sa.String(64), primary_key=True),  # RFC 7638 thumbprint
    sa.Column("alg", sa.String(16), nullable=False),
    sa.Column("private_key", sa.LargeBinary, nullable=False),  # sealed by KeyEncryptor
    sa.Column("public_jwk", sa.Text, nullable=False),  # JSON object
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("retired_at", sa.Float, nullable=True),
)

refresh_families = sa.Table(
    "refresh_families",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # public handle, the tokens' sid
    sa.Column(
        "user_id",
        sa.String(36),
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("client_id", sa.String(64), nullable=True),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.String(512), nullable=True),
    sa.Column("revoked_at", sa.Float, nullable=True),
    # The browser session (public handle) an authorization code came from.
    sa.Column("session_id", sa.String(64), nullable=True, index=True),
    # The DPoP key thumbprint a public client's family is bound to (#16, RFC 9449).
    sa.Column("dpop_jkt", sa.String(64), nullable=True),
)

refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),  # SHA-256 hex of the token
    sa.Column(
        "family_id",
        sa.String(32),
        sa.ForeignKey("refresh_families.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("issued_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
    sa.Column("used_at", sa.Float, nullable=True),
    sa.Column("grace_until", sa.Float, nullable=True),
    sa.Column("grace_payload", sa.LargeBinary, nullable=True),  # sealed with the KEK
)

revocations = sa.Table(
    "revocations",
    metadata,
    # INTEGER PRIMARY KEY on SQLite is the rowid (increasing); BIGSERIAL-like on PostgreSQL.
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("value", sa.String(128), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)

oauth_clients = sa.Table(
    "oauth_clients",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("confidential", sa.Boolean, nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=True),  # SHA-256 hex of the secret
    sa.Column("created_at", sa.Float, nullable=False),
    # Space-separated scope values; NULL: a wave-1 client, the default scopes apply.
    sa.Column("allowed_scopes", sa.Text, nullable=True),
    # Migration 0009 (SPEC "Clients"). URIs are validated (printable ASCII, no
    # spaces) and stored space-separated, as registered.
    sa.Column("first_party", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("redirect_uris", sa.Text, nullable=False, server_default=""),
    sa.Column("post_logout_redirect_uris", sa.Text, nullable=False, server_default=""),
    # Space-separated grant types; NULL: a wave-1 client (password and refresh).
    sa.Column("grant_types", sa.Text, nullable=True),
    sa.Column("backchannel_logout_uri", sa.Text, nullable=True),
    sa.Column("id_token_alg", sa.String(8), nullable=True),
)

# The sign-in throttle's fixed-window counters (keyturn.stores.sql.throttle).
login_throttle = sa.Table(
    "login_throttle",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

# The change log of the polling fan-out bus (keyturn.fanout.buses.polling): one row per
# published change, read by every instance in ``seq`` order and trimmed by the
# sweeper. AUTOINCREMENT on SQLite, so a seq is never reused after a trim.
change_log = sa.Table(
    "change_log",
    metadata,
    sa.Column(
        "seq",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("payload", sa.Text, nullable=False),
    sqlite_autoincrement=True,
)

# --- wave 2: outbox, mfa, oauth ---
# Stores: stores/sql/outbox_store.py, mfa_store.py, oauth_store.py; migration 0008.
# Grant-bearing secrets are stored only as the SHA-256/HMAC hex the caller computed
# (``*_hash``) or sealed by the caller (``sealed_secret``, ``payload``).


def _user_fk(*, nullable: bool = False, index: bool = True) -> sa.Column[str]:
    """``user_id`` referencing ``users.id``: the row is deleted with its user."""
    return sa.Column(
        "user_id",
        sa.String(36),
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        nullable=nullable,
        index=index,
    )


outbox_jobs = sa.Table(
    "outbox_jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),  # sealed by the caller
    sa.Column("state", sa.String(8), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("lease_owner", sa.String(128), nullable=True),
    sa.Column("lease_expiry", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("last_error", sa.String(200), nullable=True),
    sa.Index("ix_outbox_jobs_state_next_attempt_at", "state", "next_attempt_at"),
    sa.Index("ix_outbox_jobs_state_updated_at", "state", "updated_at"),
)

mfa_totp = sa.Table(
    "mfa_totp",
    metadata,
    _user_fk(index=False),  # the primary key's first column
    sa.Column("state", sa.String(8), nullable=False),  # "active" | "pending"
    sa.Column("sealed_secret", sa.LargeBinary, nullable=False),  # sealed with the KEK
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("confirmed_at", sa.Float, nullable=True),
    sa.PrimaryKeyConstraint("user_id", "state"),
)

mfa_totp_used = sa.Table(
    "mfa_totp_used",
    metadata,
    _user_fk(index=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
    sa.PrimaryKeyConstraint("user_id", "step"),
)

mfa_recovery_codes = sa.Table(
    "mfa_recovery_codes",
    metadata,
    _user_fk(index=False),
    sa.Column("code_hash", sa.String(128), nullable=False),  # keyed hash, never the code
    sa.Column("created_at", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("user_id", "code_hash"),
)

mfa_challenges = sa.Table(
    "mfa_challenges",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),  # SHA-256 hex of the mfa_token
    _user_fk(),
    sa.Column("binding_hash", sa.String(64), nullable=False),
    sa.Column("methods", sa.Text, nullable=False),  # JSON array of strings
    sa.Column("amr", sa.Text, nullable=False),  # JSON array of strings
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)

webauthn_challenges = sa.Table(
    "webauthn_challenges",
    metadata,
    sa.Column("challenge_hash", sa.String(64), primary_key=True),  # SHA-256 hex
    sa.Column("purpose", sa.String(16), nullable=False),
    _user_fk(nullable=True),  # NULL: a discoverable (usernameless) sign-in
    sa.Column("require_uv", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
)

webauthn_credentials = sa.Table(
    "webauthn_credentials",
    metadata,
    sa.Column("id", sa.LargeBinary, primary_key=True),  # the credential id
    _user_fk(),
    sa.Column("public_key", sa.LargeBinary, nullable=False),  # COSE key
    sa.Column("sign_count", sa.BigInteger, nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float, nullable=True),
    sa.Column("transports", sa.Text, nullable=False),  # JSON array of strings
    sa.Column("backup_eligible", sa.Boolean, nullable=False),
    sa.Column("backed_up", sa.Boolean, nullable=False),
    sa.Column("aaguid", sa.String(36), nullable=False),
    sa.Column("attachment", sa.String(32), nullable=True),
)

oauth_codes = sa.Table(
    "oauth_codes",
    metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),  # SHA-256 hex of the code
    sa.Column("grant_id", sa.String(64), nullable=False, unique=True),
    sa.Column("client_id", sa.String(64), nullable=False),
    _user_fk(),
    sa.Column("redirect_uri", sa.Text, nullable=False),
    sa.Column("code_challenge", sa.String(128), nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),  # JSON array, in order
    sa.Column("nonce", sa.Text, nullable=True),
    sa.Column("session_id", sa.String(64), nullable=False),  # the session's public handle
    sa.Column("auth_time", sa.Float, nullable=False),
    sa.Column("amr", sa.Text, nullable=False),  # JSON array
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
    sa.Column("used_at", sa.Float, nullable=True),
    sa.Column("family_id", sa.String(64), nullable=True),
)

oauth_par_requests = sa.Table(
    "oauth_par_requests",
    metadata,
    sa.Column("request_uri_hash", sa.String(64), primary_key=True),  # SHA-256 hex
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("params", sa.Text, nullable=False),  # JSON object of strings
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
    sa.Column("used_at", sa.Float, nullable=True),
)

oauth_consents = sa.Table(
    "oauth_consents",
    metadata,
    _user_fk(index=False),  # the primary key's first column
    sa.Column("client_id", sa.String(64), nullable=False, index=True),
    sa.Column("scopes", sa.Text, nullable=False),  # JSON array, sorted
    sa.Column("granted_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("user_id", "client_id"),
)

# --- account tokens (wave 2, #14; migration 0010) ---------------------------------
account_tokens = sa.Table(
    "account_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),  # SHA-256 hex of the secret
    _user_fk(index=False),
    sa.Column("purpose", sa.String(16), nullable=False),
    sa.Column("new_email", sa.String(320), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False, index=True),
    sa.Index("ix_account_tokens_user_id_purpose", "user_id", "purpose"),
)

# --- OpenID Connect (wave 2, #13) ---
#: Which clients received an ID token in which browser session (back-channel logout).
oidc_id_token_sessions = sa.Table(
    "oidc_id_token_sessions",
    metadata,
    sa.Column("session_handle", sa.String(64), nullable=False),  # public handle, no secret
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.PrimaryKeyConstraint("session_handle", "client_id"),
)

#: Every wave-2 table (the contract tests scan their rows for secrets in the clear).
WAVE2_TABLES = (
    outbox_jobs,
    mfa_totp,
    mfa_totp_used,
    mfa_recovery_codes,
    mfa_challenges,
    webauthn_challenges,
    webauthn_credentials,
    oauth_codes,
    oauth_par_requests,
    oauth_consents,
    account_tokens,  # mail (#14)
    oidc_id_token_sessions,
)
