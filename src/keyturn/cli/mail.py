"""``keyturn mail test ADDRESS``: send one message now, without the outbox."""

from __future__ import annotations

import asyncio

import click

from keyturn.cli.console import fail, stdout
from keyturn.cli.options import settings_options
from keyturn.clock import SystemClock
from keyturn.errors import DeliveryError
from keyturn.mail.compose import MailKind, compose
from keyturn.mail.folder import FolderMailer
from keyturn.mail.smtp import SmtpMailer
from keyturn.recovery.wiring import mailer_from_settings
from keyturn.settings import Settings


@click.group()
def mail() -> None:
    """Check the mail setup."""


@mail.command("test")
@click.argument("address")
@settings_options
def test(address: str, settings: Settings) -> None:
    """Send a test message to ADDRESS through --smtp-url (or into --mail-outbox-dir).

    Exits 1 with the error code (e.g. ``delivery_retryable: smtp timeout``) when
    the message cannot be delivered.
    """
    clock = SystemClock()
    mailer = mailer_from_settings(settings, clock)
    message = compose(MailKind.TEST_MESSAGE, address, {}, mail_from=settings.mail_from, clock=clock)

    async def send() -> None:
        await mailer.send(message)

    try:
        asyncio.run(send())
    except DeliveryError as exc:
        fail(f"{exc.code}: {exc.detail}", code=1)
    if isinstance(mailer, FolderMailer):
        stdout.print(f"written to {mailer.directory}/ (no --smtp-url)")
    elif isinstance(mailer, SmtpMailer):
        stdout.print(f"sent to {address} via {mailer.url.host}:{mailer.url.port}")
