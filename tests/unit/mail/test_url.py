"""--smtp-url parsing and redaction."""

from __future__ import annotations

import pytest

from keyturn.errors import ConfigurationError
from keyturn.mail import SmtpUrl


def test_smtp_url_parts_and_defaults() -> None:
    """smtp:// defaults to 587 with opportunistic STARTTLS; smtps:// to 465, implicit TLS."""
    url = SmtpUrl.parse("smtp://user%40corp:p%3Ass@mail.example")
    assert (url.host, url.port, url.implicit_tls, url.require_starttls) == (
        "mail.example",
        587,
        False,
        False,
    )
    assert (url.username, url.password) == ("user@corp", "p:ss")
    tls = SmtpUrl.parse("smtps://mail.example:2465")
    assert (tls.port, tls.implicit_tls, tls.username) == (2465, True, None)
    assert SmtpUrl.parse("smtp://mail.example?starttls=require").require_starttls


def test_password_never_in_repr_or_str() -> None:
    """repr and str show the user and host but mask the password."""
    url = SmtpUrl.parse("smtp://user:hunter2@mail.example:25")
    assert "hunter2" not in repr(url) and "hunter2" not in str(url)
    assert str(url) == "smtp://user:***@mail.example:25"


@pytest.mark.parametrize(
    "raw",
    [
        "http://user:hunter2@mail.example",
        "smtp://user:hunter2@:25",
        "smtp://user:hunter2@mail.example:notaport",
        "smtp://user:hunter2@mail.example/path",
        "smtp://user:hunter2@mail.example?verify=no",
        "smtps://user:hunter2@mail.example?starttls=require",
        "smtp://:hunter2@mail.example",
    ],
)
def test_invalid_urls_are_refused_without_quoting_them(raw: str) -> None:
    """A bad --smtp-url is a configuration error whose message never holds the password."""
    with pytest.raises(ConfigurationError) as caught:
        SmtpUrl.parse(raw)
    assert "hunter2" not in str(caught.value)


def test_loopback_detection() -> None:
    """localhost and 127.0.0.0/8 / ::1 count as loopback; other hosts do not."""
    assert SmtpUrl.parse("smtp://localhost").is_loopback
    assert SmtpUrl.parse("smtp://127.0.0.2").is_loopback
    assert SmtpUrl.parse("smtp://[::1]:25").is_loopback
    assert not SmtpUrl.parse("smtp://mail.example").is_loopback
