"""SmtpMailer against real aiosmtpd servers: AUTH, STARTTLS, implicit TLS, failures."""

from __future__ import annotations

import ssl
from email.message import EmailMessage

import pytest
from tests.unit.mail.smtp_support import SMTP_PASSWORD, SMTP_USER, StartServer, TlsFiles, free_port

from keyturn.errors import PermanentDeliveryError, RetryableDeliveryError
from keyturn.mail import SmtpMailer, SmtpUrl

# aiosmtpd warns that the plain-AUTH test server allows AUTH without TLS: on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def _message(to: str = "alice@example.com") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "keyturn <no-reply@id.example>"
    message["To"] = to
    message["Subject"] = "hello"
    message.set_content("Your link: https://id.example/verify-email?token=abc\n")
    return message


async def test_plain_smtp_with_auth_delivers(smtp_server: StartServer) -> None:
    """smtp:// with credentials logs in and delivers to the envelope recipient."""
    server = smtp_server(auth_required=True)
    await SmtpMailer(server.url(auth=True)).send(_message())
    [received] = server.recorder.messages
    assert received["Subject"] == "hello"
    assert server.recorder.envelopes == [("no-reply@id.example", ["alice@example.com"])]
    assert server.recorder.auth_seen == [SMTP_USER]


async def test_wrong_password_is_retryable(smtp_server: StartServer) -> None:
    """A refused login is a setup problem, not the message's: retry once it is fixed."""
    server = smtp_server(auth_required=True)
    url = server.url().replace("smtp://", f"smtp://{SMTP_USER}:wrong@")
    with pytest.raises(RetryableDeliveryError, match="smtp 535: authentication"):
        await SmtpMailer(url).send(_message())
    assert server.recorder.messages == []


async def test_starttls_is_used_when_offered(smtp_server: StartServer, tls_files: TlsFiles) -> None:
    """smtp:// upgrades with STARTTLS when offered, then authenticates inside TLS."""
    server = smtp_server(
        tls_context=tls_files.server_context(), require_starttls=True, auth_required=True
    )
    mailer = SmtpMailer(server.url(auth=True), tls_context=tls_files.client_context())
    await mailer.send(_message())
    assert server.recorder.tls_seen == [True]
    assert server.recorder.auth_seen == [SMTP_USER]


async def test_starttls_certificate_is_verified(
    smtp_server: StartServer, tls_files: TlsFiles
) -> None:
    """A certificate the client does not trust stops the send (retryable), nothing leaks."""
    server = smtp_server(tls_context=tls_files.server_context(), require_starttls=True)
    with pytest.raises(RetryableDeliveryError, match="tls"):
        await SmtpMailer(server.url(auth=True)).send(_message())  # default trust store
    assert server.recorder.messages == []


async def test_required_starttls_refuses_a_server_without_it(smtp_server: StartServer) -> None:
    """?starttls=require never falls back to a cleartext session."""
    server = smtp_server()
    with pytest.raises(RetryableDeliveryError, match="no STARTTLS"):
        await SmtpMailer(server.url(query="?starttls=require")).send(_message())
    assert server.recorder.messages == []


async def test_credentials_are_not_sent_in_the_clear_to_a_remote_host(
    smtp_server: StartServer,
) -> None:
    """Without TLS, the mailer refuses to AUTH unless the server is on loopback."""
    server = smtp_server()

    class RemoteLooking(SmtpUrl):
        is_loopback = False  # type: ignore[assignment]

    parsed = SmtpUrl.parse(server.url(auth=True))
    remote = RemoteLooking(
        parsed.host, parsed.port, parsed.implicit_tls, username=SMTP_USER, password=SMTP_PASSWORD
    )
    with pytest.raises(RetryableDeliveryError, match="without TLS"):
        await SmtpMailer(remote).send(_message())
    assert server.recorder.messages == []


async def test_implicit_tls_delivers(smtp_server: StartServer, tls_files: TlsFiles) -> None:
    """smtps:// speaks TLS from the first byte."""
    server = smtp_server(ssl_context=tls_files.server_context())
    mailer = SmtpMailer(server.url("smtps", auth=True), tls_context=tls_files.client_context())
    await mailer.send(_message())
    assert server.recorder.tls_seen == [True]
    assert server.recorder.auth_seen == [SMTP_USER]


async def test_temporary_refusal_451_is_retryable(smtp_server: StartServer) -> None:
    """A 4xx reply to RCPT means try later."""
    server = smtp_server(rcpt_reply="451 4.3.0 Try again later, alice@example.com")
    with pytest.raises(RetryableDeliveryError) as caught:
        await SmtpMailer(server.url()).send(_message())
    assert caught.value.detail == "smtp 451: recipient deferred"


async def test_permanent_refusal_550_is_permanent(smtp_server: StartServer) -> None:
    """A 5xx reply to RCPT will never succeed; the detail does not quote the server."""
    server = smtp_server(rcpt_reply="550 5.1.1 <alice@example.com>: no such user")
    with pytest.raises(PermanentDeliveryError) as caught:
        await SmtpMailer(server.url()).send(_message())
    assert caught.value.detail == "smtp 550: recipient refused"
    assert "alice" not in str(caught.value)


async def test_server_that_never_answers_times_out_retryably(silent_server: int) -> None:
    """A server that accepts but never greets costs at most the timeout, then retries."""
    mailer = SmtpMailer(f"smtp://127.0.0.1:{silent_server}", timeout=0.2)
    with pytest.raises(RetryableDeliveryError, match="timeout"):
        await mailer.send(_message())


async def test_connection_refused_is_retryable() -> None:
    """Nothing listening (the SMTP server is down) is a temporary failure."""
    with pytest.raises(RetryableDeliveryError, match="connection failed"):
        await SmtpMailer(f"smtp://127.0.0.1:{free_port()}", timeout=2).send(_message())


def test_mailer_repr_hides_the_password() -> None:
    """repr(SmtpMailer) shows the server, never the password."""
    mailer = SmtpMailer("smtp://u:hunter2@mail.example:587")
    assert "hunter2" not in repr(mailer) and "mail.example" in repr(mailer)


def test_default_tls_context_verifies_certificates() -> None:
    """Out of the box the mailer checks the server certificate and host name."""
    mailer = SmtpMailer("smtps://mail.example")
    context = mailer._tls_context
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
