"""One typed settings object for the server, the library and the CLI.

(Over 300 lines: one typed settings object (STYLE habit 9), one field per
operator setting, with its validation.)

Values come, highest priority first, from: explicit arguments (CLI flags),
``KEYTURN_*`` environment variables, a TOML file (``--config`` / ``KEYTURN_CONFIG``),
then the defaults below. Durations are whole seconds; lists are comma-separated in
flags and variables (TOML may use arrays). Settings are passed in, never global.
"""

from __future__ import annotations

import ipaddress
import os
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

SigningAlgorithm = Literal["EdDSA", "ES256", "RS256", "HS256"]
RevocationMode = Literal["strict", "stateless"]
FanoutMode = Literal["auto", "off"]

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./keyturn.db"
#: The scopes keyturn's own password grant may hand out, and every new client's
#: base set (SPEC "Clients"), unless ``--default-scopes`` says otherwise.
DEFAULT_SCOPES: tuple[str, ...] = ("openid", "profile", "email", "offline_access")
_SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")

#: OWASP Password Storage Cheat Sheet floor for argon2id: m=19 MiB, t=2, p=1.
MIN_ARGON2_MEMORY_KIB = 19_456
MIN_ARGON2_TIME_COST = 2

CommaList = Annotated[list[str], NoDecode]

#: The ``--config`` file of the :func:`load_settings` call in progress, if any
#: (it takes precedence over ``KEYTURN_CONFIG``).
_CONFIG_FILE: ContextVar[Path | None] = ContextVar("keyturn_config_file", default=None)


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _is_origin(value: str) -> bool:
    """Whether ``value`` is an ``http(s)://host[:port]`` origin (a trailing ``/`` allowed)."""
    import urllib.parse

    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and parts.username is None
        and parts.path in ("", "/")
        and not parts.query
        and not parts.fragment
    )


class Settings(BaseSettings):
    """Every operator setting of keyturn (see SPEC "Run" and ``docs/settings.md``)."""

    model_config = SettingsConfigDict(
        env_prefix="KEYTURN_",
        extra="forbid",
        validate_default=True,
        frozen=True,
    )

    # --- where to listen -----------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    https: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None

    # --- storage ---------------------------------------------------------------------
    database_url: str = Field(DEFAULT_SQLITE_URL, repr=False)
    redis_url: str | None = Field(None, repr=False)

    # --- tokens ----------------------------------------------------------------------
    issuer: str | None = None
    audience: str | None = None
    access_token_ttl: int = Field(900, ge=1, le=86_400)
    refresh_token_ttl: int = Field(30 * 86_400, ge=60)
    refresh_max_age: int = Field(90 * 86_400, ge=60)
    refresh_grace: int = Field(5, ge=0, le=10)
    max_refresh_families_per_user: int = Field(50, ge=1, le=10_000)
    default_scopes: CommaList = Field(default_factory=lambda: list(DEFAULT_SCOPES))
    clock_leeway: int = Field(5, ge=0, le=300)
    signing_alg: SigningAlgorithm = "ES256"
    revocation_mode: RevocationMode = "strict"
    key_encryption_key: SecretStr | None = None

    # --- sessions --------------------------------------------------------------------
    session_idle_timeout: int = Field(30 * 60, ge=1)
    session_max_age: int = Field(12 * 3600, ge=1)
    remember_idle_timeout: int = Field(7 * 86_400, ge=1)
    remember_max_age: int = Field(30 * 86_400, ge=1)
    max_sessions_per_user: int = Field(10, ge=1, le=10_000)
    session_touch_interval: int = Field(60, ge=1, le=3600)
    staleness_bound: float = Field(2.0, gt=0, le=5)
    # Fan-out (keyturn.fanout): while the change bus is alive, cached entries are
    # trusted this long, since every invalidation is pushed; else staleness_bound.
    cache_ttl: int = Field(300, ge=1, le=3600)
    fanout: FanoutMode = "auto"

    # --- sign-in throttling ------------------------------------------------------------
    login_max_account_failures: int = Field(10, ge=1, le=10)
    login_max_client_failures: int = Field(100, ge=1, le=100)
    login_failure_window: int = Field(15 * 60, ge=60)
    # IPv6 clients are counted per network of this prefix length (#10 item 7).
    throttle_ipv6_prefix: int = Field(64, ge=32, le=128)
    # Registration: every attempt counts, per client address and in all (#10 item 3).
    register_max_per_client: int = Field(10, ge=1, le=1000)
    register_max_global: int = Field(1000, ge=1)
    register_window: int = Field(3600, ge=60)

    # --- accounts --------------------------------------------------------------------
    allow_registration: bool = True
    min_password_length: int = Field(10, ge=8, le=1024)
    password_hash_memory_kib: int = Field(MIN_ARGON2_MEMORY_KIB, ge=MIN_ARGON2_MEMORY_KIB)
    password_hash_time_cost: int = Field(MIN_ARGON2_TIME_COST, ge=MIN_ARGON2_TIME_COST)
    # One core fewer than the machine has: the event loop keeps a core during a
    # login storm (measured in benchmarks/passwords.py: same logins/s, lower p99).
    password_hash_concurrency: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 1) - 1), ge=1
    )

    # --- HTTP ------------------------------------------------------------------------
    trusted_proxies: CommaList = Field(default_factory=list)
    cors_origins: CommaList = Field(default_factory=list)
    refresh_cookie: bool = False
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    # The request line plus headers, and the number of header fields: past
    # either, 431 (keyturn serve bounds the bytes before buffering them).
    max_header_bytes: int = Field(32 * 1024, ge=4096, le=1024 * 1024)
    max_header_count: int = Field(100, ge=16, le=1000)
    audit_log_file: Path | None = None

    # --- oauth clients (wave 2) ---
    # The resource-owner password grant (RFC 9700 section 2.4: it MUST NOT be
    # used): off unless asked for, and then only for clients registered with the
    # `password` grant, or without a client_id for keyturn's own first-party use.
    password_grant: bool = False

    # --- OAuth authorization code flow (wave 2, #12 part B) ---
    # Seconds an authorization code may be redeemed (SPEC: at most 60).
    authorization_code_ttl: int = Field(60, ge=1, le=60)
    # Seconds a pushed request's request_uri stays usable (RFC 9126: 5 to 600).
    par_ttl: int = Field(60, ge=1, le=600)
    # Seconds a redeemed or expired code is kept so that a replay is still seen.
    code_replay_window: int = Field(3600, ge=60, le=30 * 86_400)
    # --- mfa (wave 2) ---
    # Enrolling or removing a factor needs a sign-in at most this many seconds old.
    fresh_auth_window: int = Field(300, ge=30, le=86_400)
    # The mfa_token of a two-step sign-in: lifetime and codes it takes (SPEC maxima).
    mfa_token_ttl: int = Field(300, ge=30, le=300)
    mfa_max_attempts: int = Field(5, ge=1, le=5)
    # The label of the entry in the authenticator app (default: the issuer's host).
    totp_issuer: str | None = Field(None, min_length=1, max_length=64)
    webauthn_rp_name: str = Field("keyturn", min_length=1, max_length=64)
    webauthn_timeout: int = Field(300, ge=30, le=600)
    # Refuse (instead of only auditing) a passkey whose signature counter went back.
    webauthn_refuse_cloned: bool = False

    # --- DPoP (wave 2, #16) ---
    # Seconds a DPoP proof's iat may lie in the past (RFC 9449 section 11.1).
    dpop_max_age: int = Field(60, ge=1, le=300)
    # Demand this server's own nonce in every DPoP proof (RFC 9449 sections 8, 9).
    dpop_nonce: bool = False
    # Public clients must send a DPoP proof at /oauth/token (no bearer tokens for them).
    require_dpop: bool = False
    # Most proofs the in-process jti replay cache holds (without --redis-url).
    dpop_replay_cache_entries: int = Field(100_000, ge=1000, le=10_000_000)

    # --- validation ------------------------------------------------------------------

    @field_validator("trusted_proxies", "cors_origins", "default_scopes", mode="before")
    @classmethod
    def _lists_from_commas(cls, value: Any) -> Any:
        return _split_commas(value)

    @field_validator("default_scopes")
    @classmethod
    def _valid_scopes(cls, value: list[str]) -> list[str]:
        from keyturn.tokens.scopes import is_scope_token

        for item in value:
            if not is_scope_token(item):
                raise ValueError(f"{item!r} is not an OAuth scope (RFC 6749 section 3.3)")
        return list(dict.fromkeys(value))

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR") from None
        return value

    @field_validator("cors_origins")
    @classmethod
    def _valid_origins(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _is_origin(item):
                raise ValueError(
                    f"{item!r} is not an origin (scheme://host[:port], no path; '*' is refused)"
                )
        return value

    @field_validator("database_url")
    @classmethod
    def _valid_database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("not a database URL") from None
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+asyncpg")
        elif url.drivername == "sqlite":
            url = url.set(drivername="sqlite+aiosqlite")
        if url.drivername not in _SUPPORTED_DRIVERS:
            supported = ", ".join(_SUPPORTED_DRIVERS)
            raise ValueError(f"unsupported database driver {url.drivername!r} (use {supported})")
        return url.render_as_string(hide_password=False)

    @field_validator("redis_url")
    @classmethod
    def _valid_redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("issuer", "audience")
    @classmethod
    def _valid_http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key must be given together")
        if self.session_idle_timeout > self.session_max_age:
            raise ValueError("session_idle_timeout must not exceed session_max_age")
        if self.remember_idle_timeout > self.remember_max_age:
            raise ValueError("remember_idle_timeout must not exceed remember_max_age")
        if self.refresh_token_ttl > self.refresh_max_age:
            raise ValueError("refresh_token_ttl must not exceed refresh_max_age")
        return self

    # --- derived values --------------------------------------------------------------

    @property
    def uses_tls(self) -> bool:
        """True when the server itself terminates TLS."""
        return self.https or self.tls_cert is not None

    @property
    def public_issuer(self) -> str:
        """The ``iss`` of our tokens: the configured issuer or this server's URL."""
        if self.issuer:
            return self.issuer
        scheme = "https" if self.uses_tls else "http"
        host = "localhost" if self.https and self.host in ("127.0.0.1", "::1") else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def token_audience(self) -> str:
        """The ``aud`` our access tokens carry and require."""
        return self.audience or self.public_issuer

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        """The database file for SQLite URLs (None for in-memory or other engines)."""
        from sqlalchemy.engine import make_url

        url = make_url(self.database_url)
        if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
            return None
        return Path(url.database)

    @property
    def safe_database_url(self) -> str:
        """The database URL with any password masked, for logs and messages."""
        from sqlalchemy.engine import make_url

        return make_url(self.database_url).render_as_string(hide_password=True)

    # --- sources ---------------------------------------------------------------------

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        given = _CONFIG_FILE.get()
        config_file = given if given is not None else os.environ.get("KEYTURN_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build :class:`Settings` from flags (``overrides``), environment and TOML.

    ``None`` overrides are ignored, so unset CLI flags never mask the environment.

    Raises:
        ConfigurationError: the TOML file is missing or unreadable, or a value is
            invalid; the message names the setting and is one line.
    """
    from pydantic import ValidationError

    from keyturn.errors import ConfigurationError

    given = {key: value for key, value in overrides.items() if value is not None}
    if config_file is not None and not config_file.is_file():
        raise ConfigurationError(f"config file {config_file} does not exist")
    # The file reaches settings_customise_sources through a context variable,
    # not os.environ: loading settings changes nothing another thread can see.
    token = _CONFIG_FILE.set(config_file)
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc)) from None
    except (OSError, ValueError) as exc:  # unreadable or malformed TOML
        raise ConfigurationError(f"cannot read configuration: {exc}") from None
    finally:
        _CONFIG_FILE.reset(token)


def describe_validation_error(exc: Any) -> str:
    """One line naming the first invalid setting as a flag, and why."""
    first = exc.errors()[0]
    location = [str(part) for part in first.get("loc", ()) if isinstance(part, str)]
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if not location:
        return f"invalid configuration: {message}"
    flag = "--" + location[0].replace("_", "-")
    return f"invalid setting {flag}: {message}"
