"""Mail settings and the mailer chosen from them (#14)."""

from __future__ import annotations

import pytest

from keyturn.clock import FrozenClock
from keyturn.errors import ConfigurationError
from keyturn.mail.folder import FolderMailer
from keyturn.mail.smtp import SmtpMailer
from keyturn.recovery.wiring import mailer_from_settings
from keyturn.settings import Settings, load_settings


def test_without_smtp_url_mail_goes_to_the_outbox_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The embedded default needs no mail server: ./keyturn-outbox."""
    monkeypatch.delenv("KEYTURN_MAIL_OUTBOX_DIR", raising=False)  # set by tests/conftest.py
    mailer = mailer_from_settings(Settings(), FrozenClock())
    assert isinstance(mailer, FolderMailer)
    assert str(mailer.directory) == "keyturn-outbox"


def test_smtp_and_smtps_urls_choose_starttls_or_implicit_tls() -> None:
    """smtp:// is STARTTLS on 587 by default, smtps:// implicit TLS on 465; the
    password never shows in a repr."""
    plain = mailer_from_settings(
        Settings(smtp_url="smtp://u:hunter2@mail.example.com"), FrozenClock()
    )
    implicit = mailer_from_settings(Settings(smtp_url="smtps://mail.example.com"), FrozenClock())
    assert isinstance(plain, SmtpMailer) and isinstance(implicit, SmtpMailer)
    assert (plain.url.port, plain.url.implicit_tls) == (587, False)
    assert (implicit.url.port, implicit.url.implicit_tls) == (465, True)
    assert "hunter2" not in repr(plain) and "hunter2" not in repr(
        Settings(smtp_url="smtp://u:hunter2@h")
    )


@pytest.mark.parametrize(
    ("flags", "flag"),
    [
        ({"smtp_url": "http://u:hunter2@mail.example.com"}, "--smtp-url"),
        ({"mail_from": "not an address"}, "--mail-from"),
        ({"mail_retry_base": 100, "mail_retry_max": 10}, "mail_retry_base"),
    ],
)
def test_bad_mail_settings_fail_in_one_line_without_the_password(
    flags: dict[str, object], flag: str
) -> None:
    """A wrong scheme, a bad From or retry bounds the wrong way round are refused at
    start, in one line naming the setting, never echoing the SMTP password."""
    with pytest.raises(ConfigurationError) as caught:
        load_settings(**flags)
    message = str(caught.value)
    assert flag in message and "\n" not in message and "hunter2" not in message
