"""FolderMailer: private folder, private files, whole .eml messages."""

from __future__ import annotations

import stat
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from keyturn.clock import FrozenClock, SystemClock
from keyturn.errors import ConfigurationError
from keyturn.mail import FolderMailer, compose

LINK = "https://id.example/verify-email?token=dmVyaWZ5LXRva2Vu"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_writes_a_parseable_eml_with_text_and_html(tmp_path: Path) -> None:
    """Each message is one .eml file that email.parser reads back with both parts."""
    folder = tmp_path / "keyturn-outbox"
    clock = FrozenClock()
    mailer = FolderMailer(folder, clock=clock)
    message = compose(
        "verify_email",
        "alice@example.com",
        {"link": LINK, "expires_in": 86400},
        mail_from="keyturn <no-reply@localhost>",
        clock=clock,
    )
    await mailer.send(message)
    await mailer.send(message)
    files = sorted(folder.iterdir())
    assert len(files) == 2 and all(path.suffix == ".eml" for path in files)
    assert files[0].name.startswith("20270115T080000Z-")
    with files[0].open("rb") as handle:
        parsed = BytesParser(policy=policy.default).parse(handle)
    assert parsed["To"] == "alice@example.com"
    text, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert text is not None and html is not None
    assert LINK in text.get_content() and LINK in html.get_content()  # type: ignore[attr-defined]


async def test_folder_is_0700_and_files_are_0600(tmp_path: Path) -> None:
    """Secret links sit in files only their owner can read, in a folder only they can list."""
    folder = tmp_path / "nested" / "outbox"
    mailer = FolderMailer(folder, clock=SystemClock())
    await mailer.send(
        compose(
            "test_message", "a@example.com", {}, mail_from="k <k@x.example>", clock=FrozenClock()
        )
    )
    assert _mode(folder) == 0o700
    [written] = folder.iterdir()
    assert _mode(written) == 0o600


async def test_existing_open_folder_is_tightened(tmp_path: Path) -> None:
    """A folder someone created world-readable is made 0700 before anything is written."""
    folder = tmp_path / "outbox"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    FolderMailer(folder, clock=SystemClock()).write(
        compose(
            "test_message", "a@example.com", {}, mail_from="k <k@x.example>", clock=FrozenClock()
        )
    )
    assert _mode(folder) == 0o700


def test_no_temporary_file_is_left_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails half-way leaves no partial message behind."""
    folder = tmp_path / "outbox"
    mailer = FolderMailer(folder, clock=SystemClock())

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("keyturn.mail.folder.os.replace", broken_replace)
    with pytest.raises(OSError):
        mailer.write(
            compose(
                "test_message",
                "a@example.com",
                {},
                mail_from="k <k@x.example>",
                clock=FrozenClock(),
            )
        )
    assert list(folder.iterdir()) == []


def test_symlinked_folder_is_refused(tmp_path: Path) -> None:
    """The outbox folder must not be a symlink someone could point elsewhere."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(ConfigurationError):
        FolderMailer(tmp_path / "link", clock=SystemClock()).prepare()
