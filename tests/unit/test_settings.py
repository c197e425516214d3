"""Settings: defaults from SPEC, the three sources and their order, clear errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from keyturn.errors import ConfigurationError
from keyturn.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("KEYTURN_"):
            monkeypatch.delenv(name)


def test_defaults_hold_what_spec_promises() -> None:
    """Out of the box: SQLite, short access tokens, NIST AAL2 session limits, strict revocation."""
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///./keyturn.db"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.access_token_ttl == 900
    assert settings.refresh_token_ttl == 30 * 86_400
    assert 0 < settings.refresh_grace <= 10
    assert settings.clock_leeway <= 5
    assert settings.session_idle_timeout == 1800
    assert settings.session_max_age == 12 * 3600
    assert settings.signing_alg in ("EdDSA", "ES256", "RS256")
    assert settings.revocation_mode == "strict"
    assert settings.allow_registration is True
    assert settings.trusted_proxies == []
    assert settings.min_password_length == 10


def test_environment_variable_sets_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """KEYTURN_<NAME> sets the setting of that name."""
    monkeypatch.setenv("KEYTURN_ACCESS_TOKEN_TTL", "300")
    monkeypatch.setenv("KEYTURN_ALLOW_REGISTRATION", "false")
    settings = load_settings()
    assert settings.access_token_ttl == 300
    assert settings.allow_registration is False


def test_lists_are_comma_separated_in_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lists such as trusted proxies come comma-separated, as SPEC says."""
    monkeypatch.setenv("KEYTURN_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")
    monkeypatch.setenv("KEYTURN_CORS_ORIGINS", "https://a.example,https://b.example")
    settings = load_settings()
    assert settings.trusted_proxies == ["10.0.0.0/8", "127.0.0.1"]
    assert settings.cors_origins == ["https://a.example", "https://b.example"]


def test_flag_beats_variable_beats_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Priority is flags, then KEYTURN_* variables, then the TOML file."""
    config = tmp_path / "keyturn.toml"
    config.write_text(
        "access_token_ttl = 100\nrefresh_grace = 3\nsession_idle_timeout = 600\n"
        'trusted_proxies = ["192.168.0.0/16"]\n'
    )
    monkeypatch.setenv("KEYTURN_ACCESS_TOKEN_TTL", "200")
    monkeypatch.setenv("KEYTURN_REFRESH_GRACE", "4")
    settings = load_settings(config, access_token_ttl=300)
    assert settings.access_token_ttl == 300
    assert settings.refresh_grace == 4
    assert settings.session_idle_timeout == 600
    assert settings.trusted_proxies == ["192.168.0.0/16"]


def test_loading_a_config_file_leaves_the_environment_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--config beats KEYTURN_CONFIG without rewriting os.environ, during the load
    (another thread reads the same environment) or after it."""
    ours, theirs = tmp_path / "ours.toml", tmp_path / "theirs.toml"
    ours.write_text("access_token_ttl = 300\n")
    theirs.write_text("access_token_ttl = 600\n")
    monkeypatch.setenv("KEYTURN_CONFIG", str(theirs))
    seen: list[str | None] = []
    original = Settings.settings_customise_sources.__func__  # type: ignore[attr-defined]

    def spy(cls: type[Settings], *args: Any, **kwargs: Any) -> Any:
        seen.append(os.environ.get("KEYTURN_CONFIG"))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Settings, "settings_customise_sources", classmethod(spy))
    assert load_settings(ours).access_token_ttl == 300
    assert seen == [str(theirs)]
    assert os.environ["KEYTURN_CONFIG"] == str(theirs)
    assert load_settings().access_token_ttl == 600


def test_unset_flags_do_not_mask_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flag left at None (not given) keeps the variable's value."""
    monkeypatch.setenv("KEYTURN_PORT", "9000")
    assert load_settings(port=None).port == 9000


@pytest.mark.parametrize(
    ("overrides", "flag"),
    [
        ({"access_token_ttl": -1}, "--access-token-ttl"),
        ({"session_idle_timeout": 0}, "--session-idle-timeout"),
        ({"signing_alg": "none"}, "--signing-alg"),
        ({"signing_alg": "HS512"}, "--signing-alg"),
        ({"database_url": "not a url"}, "--database-url"),
        ({"database_url": "mysql://db/keyturn"}, "--database-url"),
        ({"redis_url": "http://localhost"}, "--redis-url"),
        ({"issuer": "auth.example.com"}, "--issuer"),
        ({"refresh_grace": 11}, "--refresh-grace"),
        ({"clock_leeway": 3600}, "--clock-leeway"),
        ({"revocation_mode": "lenient"}, "--revocation-mode"),
        ({"trusted_proxies": "10.0.0.0/8,not-an-ip"}, "--trusted-proxies"),
        ({"port": "eighty"}, "--port"),
        ({"password_hash_memory_kib": 1024}, "--password-hash-memory-kib"),
    ],
)
def test_invalid_value_gives_one_line_naming_the_flag(
    overrides: dict[str, object], flag: str
) -> None:
    """Bad input stops with one line that names the flag, never a traceback."""
    with pytest.raises(ConfigurationError) as caught:
        load_settings(**overrides)
    message = caught.value.detail
    assert flag in message
    assert "\n" not in message


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    """--config pointing nowhere says so."""
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings(tmp_path / "absent.toml")


def test_malformed_config_file_is_a_clear_error(tmp_path: Path) -> None:
    """A TOML syntax error is a configuration error, not a crash."""
    config = tmp_path / "bad.toml"
    config.write_text("access_token_ttl = = 3\n")
    with pytest.raises(ConfigurationError, match="cannot read configuration"):
        load_settings(config)


def test_unknown_key_in_config_file_is_refused(tmp_path: Path) -> None:
    """A misspelt setting is an error rather than silently ignored."""
    config = tmp_path / "typo.toml"
    config.write_text("acess_token_ttl = 3\n")
    with pytest.raises(ConfigurationError, match="acess"):
        load_settings(config)


def test_repr_never_shows_secrets() -> None:
    """Database passwords and the key-encryption key stay out of repr() and logs."""
    settings = load_settings(
        database_url="postgresql+asyncpg://keyturn:hunter2-db@db/keyturn",
        redis_url="redis://:hunter2-redis@cache:6379/0",
        key_encryption_key="hunter2-kek",
    )
    shown = repr(settings) + str(settings)
    for secret in ("hunter2-db", "hunter2-redis", "hunter2-kek"):
        assert secret not in shown
    assert "hunter2-db" not in settings.safe_database_url


def test_plain_driver_names_are_upgraded_to_async_drivers() -> None:
    """postgresql:// and sqlite:// URLs get the async driver keyturn uses."""
    assert load_settings(database_url="postgresql://db/k").database_url.startswith(
        "postgresql+asyncpg://"
    )
    assert load_settings(database_url="sqlite:///x.db").database_url == "sqlite+aiosqlite:///x.db"


def test_issuer_defaults_to_the_server_url() -> None:
    """Without --issuer, tokens name this server; with --https the scheme follows."""
    assert load_settings().public_issuer == "http://127.0.0.1:8000"
    assert load_settings(https=True).public_issuer == "https://localhost:8000"
    assert load_settings(issuer="https://auth.example.com/").public_issuer == (
        "https://auth.example.com"
    )


def test_tls_files_come_in_pairs(tmp_path: Path) -> None:
    """A certificate without its key (or the reverse) is refused."""
    with pytest.raises(ConfigurationError, match="--tls-cert"):
        load_settings(tls_cert=tmp_path / "cert.pem")


def test_every_setting_is_documented() -> None:
    """docs/settings.md names every setting as a flag, so the reference cannot rot."""
    text = (Path(__file__).parents[2] / "docs" / "settings.md").read_text()
    for name in Settings.model_fields:
        assert f"--{name.replace('_', '-')}" in text, name


def test_default_scopes_are_comma_separated_scope_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """--default-scopes defaults to SPEC's set, takes a comma-separated list, and
    refuses a value that is not an RFC 6749 scope in one line (#10 item 10c)."""
    assert load_settings().default_scopes == ["openid", "profile", "email", "offline_access"]
    monkeypatch.setenv("KEYTURN_DEFAULT_SCOPES", "openid, notes:read,notes:read")
    assert load_settings().default_scopes == ["openid", "notes:read"]
    with pytest.raises(ConfigurationError, match="--default-scopes") as caught:
        load_settings(default_scopes='bad"scope')
    assert "\n" not in str(caught.value)


def test_request_head_limits_have_bounded_defaults() -> None:
    """A 32 KiB head and 100 header fields by default; a limit too small to serve
    a browser, or too large to bound anything, is refused (#10 item 8)."""
    settings = load_settings()
    assert (settings.max_header_bytes, settings.max_header_count) == (32 * 1024, 100)
    for overrides in (
        {"max_header_bytes": 1024},
        {"max_header_bytes": 64 * 1024 * 1024},
        {"max_header_count": 4},
        {"max_header_count": 100_000},
    ):
        with pytest.raises(ConfigurationError, match="--max-header-"):
            load_settings(**overrides)
