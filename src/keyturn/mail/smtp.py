"""Send mail through an SMTP server with ``aiosmtplib``.

One connection per message: the outbox sends a few messages per user action, so
pooling would only add stale-connection failure modes. Every network step has a
timeout. Failures become keyturn errors the outbox understands: a temporary one
(4xx, timeout, refused connection, TLS or AUTH trouble) is retryable; a 5xx that
refuses this message's sender, recipient or content is permanent. Error details
carry the SMTP code only: server replies often quote the recipient or content.

Credentials are never sent in the clear: without TLS (no STARTTLS offered), the
mailer logs in only to a loopback server (a local relay or a test).
"""

from __future__ import annotations

import logging
import ssl
from email.message import EmailMessage

import aiosmtplib

from keyturn.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from keyturn.mail.url import SmtpUrl

__all__ = ["SmtpMailer", "classify_smtp_error"]

logger = logging.getLogger("keyturn.mail")

#: 5xx replies that say nothing about the message itself: fix the setup, then retry.
_SETUP_ERRORS = (
    aiosmtplib.SMTPAuthenticationError,
    aiosmtplib.SMTPHeloError,
    aiosmtplib.SMTPConnectError,
)


def classify_smtp_error(exc: BaseException) -> DeliveryError:
    """Map an ``aiosmtplib`` or socket error to a retryable or permanent keyturn error."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = sorted({refused.code for refused in exc.recipients})
        if any(code < 500 for code in codes):
            return RetryableDeliveryError(f"smtp {codes[0]}: recipient deferred")
        return PermanentDeliveryError(f"smtp {codes[-1] if codes else 550}: recipient refused")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        code = exc.code
        step = {
            aiosmtplib.SMTPRecipientRefused: "recipient",
            aiosmtplib.SMTPSenderRefused: "sender",
            aiosmtplib.SMTPDataError: "message",
            aiosmtplib.SMTPAuthenticationError: "authentication",
        }.get(type(exc), "command")
        if code >= 500 and not isinstance(exc, _SETUP_ERRORS):
            return PermanentDeliveryError(f"smtp {code}: {step} refused")
        return RetryableDeliveryError(f"smtp {code}: {step} deferred")
    if isinstance(exc, TimeoutError):  # SMTPTimeoutError is one too
        return RetryableDeliveryError("smtp timeout")
    if isinstance(exc, ssl.SSLError):
        return RetryableDeliveryError(f"smtp tls failed: {type(exc).__name__}")
    if isinstance(exc, OSError | aiosmtplib.SMTPException):  # refused, reset, DNS, disconnect
        return RetryableDeliveryError(f"smtp connection failed: {type(exc).__name__}")
    return RetryableDeliveryError(f"smtp failed: {type(exc).__name__}")


class SmtpMailer:
    """A :class:`~keyturn.mail.mailer.Mailer` for one SMTP server.

    ``timeout`` bounds each network step (connect, greeting, each command).
    ``tls_context`` (keyword-only) replaces the default verifying context, e.g. to
    trust a private CA; certificate verification cannot be turned off here.
    """

    def __init__(
        self,
        url: SmtpUrl | str,
        *,
        timeout: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        """Raises:
        ConfigurationError: ``url`` is a string that is not a valid SMTP URL.
        """
        self.url = url if isinstance(url, SmtpUrl) else SmtpUrl.parse(url)
        self._timeout = timeout
        self._tls_context = tls_context or ssl.create_default_context()
        self._local_hostname = local_hostname

    def __repr__(self) -> str:
        return f"SmtpMailer({self.url!r}, timeout={self._timeout})"

    async def send(self, message: EmailMessage) -> None:
        """Connect, secure the connection, log in if configured, send, quit.

        Raises:
            RetryableDeliveryError: temporary failure; see :func:`classify_smtp_error`.
            PermanentDeliveryError: the server refused this message for good.
        """
        url = self.url
        client = aiosmtplib.SMTP(
            hostname=url.host,
            port=url.port,
            use_tls=url.implicit_tls,
            start_tls=False,  # decided below, so a missing STARTTLS is seen, not skipped
            tls_context=self._tls_context,
            timeout=self._timeout,
            local_hostname=self._local_hostname,
        )
        try:
            await client.connect()
            encrypted = url.implicit_tls
            if not encrypted:
                await client.ehlo()
                if client.supports_extension("starttls"):
                    await client.starttls(tls_context=self._tls_context)
                    encrypted = True
                elif url.require_starttls:
                    raise RetryableDeliveryError("smtp server offers no STARTTLS")
            if url.username is not None:
                if not encrypted and not url.is_loopback:
                    raise RetryableDeliveryError("refusing to send SMTP credentials without TLS")
                await client.login(url.username, url.password or "")
            await client.send_message(message)
        except DeliveryError:
            raise
        except Exception as exc:
            raise classify_smtp_error(exc) from None
        finally:
            await _close(client)


async def _close(client: aiosmtplib.SMTP) -> None:
    """QUIT politely if still connected; a failure to do so changes nothing."""
    if not client.is_connected:
        return
    try:
        await client.quit()
    except Exception:
        client.close()
