"""The one small protocol every way of sending mail implements.

A mailer takes a composed :class:`email.message.EmailMessage` and delivers it or
raises: :class:`~keyturn.errors.RetryableDeliveryError` when trying again later
may work, :class:`~keyturn.errors.PermanentDeliveryError` when it never will. The
outbox decides what to do with either; a mailer never retries on its own.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Protocol

__all__ = ["Mailer", "MemoryMailer"]


class Mailer(Protocol):
    """Delivers one message."""

    async def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` to its ``To`` address.

        Raises:
            RetryableDeliveryError: a temporary failure (4xx, timeout, no connection).
            PermanentDeliveryError: the message is refused for good (5xx).
        """
        ...


class MemoryMailer:
    """Keeps sent messages in ``sent``; for tests of the flows that send mail."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    def __repr__(self) -> str:
        return f"MemoryMailer(sent={len(self.sent)})"

    async def send(self, message: EmailMessage) -> None:
        """Record ``message``."""
        self.sent.append(message)
