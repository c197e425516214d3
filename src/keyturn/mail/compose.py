"""Compose keyturn's mail: a plain-text part and an HTML alternative per message.

Each :class:`MailKind` has a subject, the context keys it needs, and two Jinja2
templates shipped in ``keyturn/mail/templates/`` (``<kind>.txt``, ``<kind>.html``).
HTML is autoescaped, so a value a user chose (a new address, a device name) can
never inject markup; links must be ``https://`` (or ``http://`` for a local
development server), so no ``javascript:`` link can be planted. Rendering is
strict: a missing context key fails instead of sending "Click here: ".
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from urllib.parse import urlsplit

import jinja2

from keyturn.clock import Clock, to_datetime
from keyturn.errors import ConfigurationError, PermanentDeliveryError

__all__ = ["ContextValue", "MailKind", "compose", "parse_mail_from"]

ContextValue = str | int


class MailKind(enum.StrEnum):
    """Every message keyturn sends."""

    PASSWORD_RESET = "password_reset"  # noqa: S105 (a mail kind, not a secret)
    VERIFY_EMAIL = "verify_email"
    EMAIL_CHANGE_CONFIRM = "email_change_confirm"  # to the new address
    EMAIL_CHANGED_NOTICE = "email_changed_notice"  # to the old address
    PASSWORD_CHANGED_NOTICE = "password_changed_notice"  # noqa: S105 (a mail kind, not a secret)
    PASSWORD_RESET_NOTICE = "password_reset_notice"  # noqa: S105 (a mail kind, not a secret)
    MFA_CHANGED_NOTICE = "mfa_changed_notice"
    TEST_MESSAGE = "test_message"


_SUBJECTS: dict[MailKind, str] = {
    MailKind.PASSWORD_RESET: "Reset your {product} password",
    MailKind.VERIFY_EMAIL: "Confirm your e-mail address for {product}",
    MailKind.EMAIL_CHANGE_CONFIRM: "Confirm your new e-mail address for {product}",
    MailKind.EMAIL_CHANGED_NOTICE: "The e-mail address of your {product} account was changed",
    MailKind.PASSWORD_CHANGED_NOTICE: "Your {product} password was changed",
    MailKind.PASSWORD_RESET_NOTICE: "Your {product} password was reset",
    MailKind.MFA_CHANGED_NOTICE: "The sign-in methods of your {product} account changed",
    MailKind.TEST_MESSAGE: "Test message from {product}",
}

#: Context each kind needs; ``link`` is checked as a URL, ``expires_in`` is seconds.
REQUIRED_CONTEXT: dict[MailKind, frozenset[str]] = {
    MailKind.PASSWORD_RESET: frozenset({"link", "expires_in"}),
    MailKind.VERIFY_EMAIL: frozenset({"link", "expires_in"}),
    MailKind.EMAIL_CHANGE_CONFIRM: frozenset({"link", "expires_in", "new_email"}),
    MailKind.EMAIL_CHANGED_NOTICE: frozenset({"new_email"}),
    MailKind.PASSWORD_CHANGED_NOTICE: frozenset(),
    MailKind.PASSWORD_RESET_NOTICE: frozenset(),
    MailKind.MFA_CHANGED_NOTICE: frozenset({"change"}),
    MailKind.TEST_MESSAGE: frozenset(),
}

_LINK_KEYS = ("link", "help_link")


def _duration(seconds: int) -> str:
    """``1800`` -> ``30 minutes``; whole hours and days when exact."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{max(1, round(seconds / 60))} minutes"


def _environment() -> jinja2.Environment:
    """One environment: ``.html`` templates autoescaped, ``.txt`` ones not (plain text
    is not HTML, escaping would garble it)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("keyturn.mail", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = _duration
    return env


_TEMPLATES = _environment()


def _transfer_encoding(body: str) -> str | None:
    """``7bit`` whenever RFC 5322 allows it (ASCII, lines <= 998), so links stay
    clickable in a raw ``.eml`` file; otherwise let :mod:`email` pick QP or base64."""
    if body.isascii() and all(len(line) <= 998 for line in body.splitlines()):
        return "7bit"
    return None


def parse_mail_from(mail_from: str) -> tuple[str, str]:
    """Return ``(header value, domain)`` for ``--mail-from``.

    Raises:
        ConfigurationError: not an address like ``keyturn <no-reply@example.com>``.
    """
    name, address = parseaddr(mail_from)
    try:
        parsed = Address(display_name=name, addr_spec=address)
    except (ValueError, IndexError):
        raise ConfigurationError("--mail-from is not a valid e-mail address.") from None
    if not parsed.domain or "\n" in mail_from or "\r" in mail_from:
        raise ConfigurationError("--mail-from is not a valid e-mail address.")
    return str(parsed), parsed.domain


def _check_context(kind: MailKind, context: Mapping[str, ContextValue]) -> None:
    missing = REQUIRED_CONTEXT[kind] - set(context)
    if missing:
        raise PermanentDeliveryError(f"mail {kind}: missing context {sorted(missing)}")
    for key, value in context.items():
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise PermanentDeliveryError(f"mail {kind}: context {key!r} must be text or a number")
    for key in _LINK_KEYS:
        if key in context:
            link = str(context[key])
            parts = urlsplit(link)
            if parts.scheme not in ("https", "http") or not parts.netloc or link != link.strip():
                raise PermanentDeliveryError(f"mail {kind}: {key} must be an http(s) URL")
            if any(char.isspace() for char in link):
                raise PermanentDeliveryError(f"mail {kind}: {key} must be an http(s) URL")


def compose(
    kind: MailKind | str,
    to: str,
    context: Mapping[str, ContextValue],
    *,
    mail_from: str,
    clock: Clock,
    product: str = "keyturn",
) -> EmailMessage:
    """Build the message of ``kind`` for ``to`` from ``context``.

    Templates also see ``product``, ``to`` and ``when`` (the UTC time of
    composition). ``Message-ID`` uses the domain of ``mail_from``.

    Raises:
        PermanentDeliveryError: unknown kind, invalid recipient, or context that
            is missing a key, holds a non-scalar value or a non-http(s) link.
        ConfigurationError: ``mail_from`` is not a valid address.
    """
    try:
        kind = MailKind(kind)
    except ValueError:
        raise PermanentDeliveryError("unknown mail kind") from None
    try:
        recipient = Address(addr_spec=to)
    except (ValueError, IndexError):
        raise PermanentDeliveryError(f"mail {kind}: invalid recipient address") from None
    if "\n" in product or "\r" in product:
        raise ConfigurationError("The product name must be one line.")
    from_header, from_domain = parse_mail_from(mail_from)
    _check_context(kind, context)
    now = to_datetime(clock.now())
    values = {**context, "product": product, "to": recipient.addr_spec}
    values["when"] = now.strftime("%Y-%m-%d %H:%M UTC")
    message = EmailMessage()
    message["Subject"] = _SUBJECTS[kind].format(product=product)
    message["From"] = from_header
    message["To"] = recipient.addr_spec
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=from_domain)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    text = _TEMPLATES.get_template(f"{kind.value}.txt").render(values)
    html = _TEMPLATES.get_template(f"{kind.value}.html").render(values)
    message.set_content(text, cte=_transfer_encoding(text))
    message.add_alternative(html, subtype="html", cte=_transfer_encoding(html))
    return message
