"""Message composition: both parts for every kind, escaping, links, headers."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from keyturn.clock import FrozenClock
from keyturn.errors import ConfigurationError, PermanentDeliveryError
from keyturn.mail import MailKind, compose
from keyturn.mail.compose import REQUIRED_CONTEXT

LINK = "https://id.example/password/reset?token=Zm9vYmFyYmF6cXV4"
FROM = "Example ID <no-reply@id.example>"
CONTEXT = {"link": LINK, "expires_in": 1800, "new_email": "new@example.com", "change": "TOTP on"}


def _parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", list(MailKind))
def test_every_kind_renders_text_and_html_with_a_subject(kind: MailKind) -> None:
    """Each kind has a subject and a text part plus an HTML alternative naming the recipient."""
    context = {key: CONTEXT[key] for key in REQUIRED_CONTEXT[kind]}
    message = compose(kind, "alice@example.com", context, mail_from=FROM, clock=FrozenClock())
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] and "keyturn" in message["Subject"]
    text, html = _parts(message)
    assert "alice@example.com" in text and "alice@example.com" in html
    assert html.lstrip().startswith("<!DOCTYPE html>")
    if "link" in context:
        assert LINK in text and f'href="{LINK}"' in html


def test_headers_from_date_and_message_id() -> None:
    """From is --mail-from, Date is the injected clock's, Message-ID is on the sender's domain."""
    clock = FrozenClock(1_800_000_000)
    message = compose("test_message", "alice@example.com", {}, mail_from=FROM, clock=clock)
    assert message["From"] == FROM and message["To"] == "alice@example.com"
    assert message["Date"] == "Fri, 15 Jan 2027 08:00:00 +0000"
    assert message["Message-ID"].endswith("@id.example>")
    assert message["Auto-Submitted"] == "auto-generated"
    other = compose("test_message", "alice@example.com", {}, mail_from=FROM, clock=clock)
    assert other["Message-ID"] != message["Message-ID"]


def test_html_escapes_user_supplied_context_but_text_keeps_it_verbatim() -> None:
    """A value a user chose cannot inject markup into the HTML part."""
    evil = '<img src=x onerror="alert(1)">Laptop'
    message = compose(
        MailKind.MFA_CHANGED_NOTICE,
        "alice@example.com",
        {"change": evil},
        mail_from=FROM,
        clock=FrozenClock(),
    )
    text, html = _parts(message)
    assert evil not in html and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;Laptop" in html
    assert evil in text


def test_link_is_plain_in_the_raw_message() -> None:
    """The raw message (the .eml a developer opens) holds the link unencoded."""
    message = compose(
        "password_reset", "alice@example.com", CONTEXT, mail_from=FROM, clock=FrozenClock()
    )
    raw = message.as_bytes()
    assert LINK.encode() in raw
    reparsed = message_from_bytes(raw, policy=policy.default)
    assert LINK in _parts(reparsed)[0]  # type: ignore[arg-type]


def test_expiry_is_written_for_humans() -> None:
    """expires_in seconds read as minutes, hours or days."""
    for seconds, words in ((1800, "30 minutes"), (3600, "1 hour"), (86400, "1 day")):
        context = {"link": LINK, "expires_in": seconds}
        message = compose(
            "verify_email", "a@example.com", context, mail_from=FROM, clock=FrozenClock()
        )
        assert words in _parts(message)[0]


@pytest.mark.parametrize(
    "context",
    [
        {"expires_in": 1800},
        {"link": "javascript:alert(1)", "expires_in": 1800},
        {"link": "https://id.example/reset?token=a b", "expires_in": 1800},
        {"link": "//id.example/reset", "expires_in": 1800},
        {"link": LINK, "expires_in": [1800]},
    ],
)
def test_bad_context_is_a_permanent_failure(context: dict[str, object]) -> None:
    """Missing keys, non-http(s) links and non-scalar values never produce a mail."""
    with pytest.raises(PermanentDeliveryError):
        compose("password_reset", "a@example.com", context, mail_from=FROM, clock=FrozenClock())  # type: ignore[arg-type]


@pytest.mark.parametrize("to", ["a@example.com\r\nBcc: eve@evil.example", "not-an-address", ""])
def test_recipient_header_injection_is_refused(to: str) -> None:
    """A recipient with CR/LF or no address is refused before any header is written."""
    with pytest.raises(PermanentDeliveryError):
        compose("test_message", to, {}, mail_from=FROM, clock=FrozenClock())


def test_unknown_kind_and_bad_sender() -> None:
    """An unknown kind is permanent; an invalid --mail-from is a configuration error."""
    with pytest.raises(PermanentDeliveryError):
        compose("newsletter", "a@example.com", {}, mail_from=FROM, clock=FrozenClock())
    with pytest.raises(ConfigurationError):
        compose("test_message", "a@example.com", {}, mail_from="nobody", clock=FrozenClock())
