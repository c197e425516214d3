"""Where the key-encryption key comes from (resolve_kek)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from keyturn.errors import ConfigurationError
from keyturn.keys.encryption import KeyEncryptor, generate_kek, kek_file_for, resolve_kek
from keyturn.keys.records import generate_key
from keyturn.settings import Settings


def sqlite(path: Path) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{path}")


def test_configured_kek_wins(tmp_path: Path) -> None:
    """--key-encryption-key is used as given, and no file is written."""
    kek = generate_kek()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'k.db'}", key_encryption_key=kek
    )
    source = resolve_kek(settings)
    assert (source.created, source.ephemeral) == (None, False)
    assert not (tmp_path / "k.db.kek").exists()
    key = generate_key("ES256", now=0)
    assert KeyEncryptor.from_text(kek).unseal(source.encryptor.seal(key)) == key


def test_sqlite_file_gets_a_private_kek_file_once(tmp_path: Path) -> None:
    """The first resolve creates <db>.kek (0600) and says so; the next reads the same key."""
    settings = sqlite(tmp_path / "keyturn.db")
    first = resolve_kek(settings)
    path = tmp_path / "keyturn.db.kek"
    assert first.created == path == kek_file_for(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = resolve_kek(settings)
    assert second.created is None
    key = generate_key("EdDSA", now=0)
    assert second.encryptor.unseal(first.encryptor.seal(key)) == key
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_lost_creation_race_reads_the_winners_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If another process links its file first, we use its key and claim no creation."""
    settings = sqlite(tmp_path / "keyturn.db")
    winner = generate_kek()
    real_link = os.link

    def racing_link(src: str, dst: str) -> None:
        Path(dst).write_text(winner + "\n")
        real_link(src, dst)  # raises FileExistsError, as in a real race

    monkeypatch.setattr(os, "link", racing_link)
    source = resolve_kek(settings)
    assert source.created is None
    key = generate_key("ES256", now=0)
    assert KeyEncryptor.from_text(winner).unseal(source.encryptor.seal(key)) == key


def test_in_memory_sqlite_gets_an_ephemeral_kek() -> None:
    """An in-memory database needs no file: a fresh ephemeral key."""
    source = resolve_kek(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    assert source.ephemeral and source.created is None


def test_postgres_without_a_kek_is_refused() -> None:
    """PostgreSQL is shared by many instances: a KEK must be configured."""
    settings = Settings(database_url="postgresql+asyncpg://u:p@db.example/keyturn")
    with pytest.raises(ConfigurationError) as caught:
        resolve_kek(settings)
    assert "--key-encryption-key (KEYTURN_KEY_ENCRYPTION_KEY)" in caught.value.detail


@pytest.mark.parametrize("text", ["short", "A" * 42, "!" * 43, "A" * 44 + "AAAA"])
def test_malformed_kek_is_refused(text: str) -> None:
    """A KEK that is not 32 bytes of base64url is a ConfigurationError."""
    with pytest.raises(ConfigurationError):
        resolve_kek(Settings(database_url="sqlite+aiosqlite:///:memory:", key_encryption_key=text))


def test_corrupt_kek_file_is_refused_with_its_name(tmp_path: Path) -> None:
    """A .kek file that does not hold a valid key fails and names the file."""
    (tmp_path / "keyturn.db.kek").write_text("not a key\n")
    with pytest.raises(ConfigurationError) as caught:
        resolve_kek(sqlite(tmp_path / "keyturn.db"))
    assert "keyturn.db.kek" in caught.value.detail
