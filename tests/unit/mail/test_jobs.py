"""Mail through the outbox: sealed jobs, real SMTP delivery, retry/dead mapping, no leaks."""

from __future__ import annotations

import logging

import pytest
from tests.unit.mail.smtp_support import StartServer

from keyturn.clock import FrozenClock
from keyturn.errors import ConfigurationError
from keyturn.mail import (
    MAIL_JOB_KIND,
    MailJobHandler,
    MailKind,
    MemoryMailer,
    RedactingFilter,
    SmtpMailer,
    enqueue_mail,
    recipient_tag,
    redact_urls,
)
from keyturn.outbox import AesGcmSealer, Dispatcher, JobState, MemoryOutboxStore, RetryPolicy

TOKEN = "Q2hlY2tUaGlzU2VjcmV0VG9rZW5WYWx1ZQ"
LINK = f"https://id.example/password/reset?token={TOKEN}"
FROM = "keyturn <no-reply@id.example>"
CONTEXT = {"link": LINK, "expires_in": 1800}


def _pipeline(
    mailer: object, clock: FrozenClock
) -> tuple[MemoryOutboxStore, AesGcmSealer, Dispatcher]:
    store, sealer = MemoryOutboxStore(), AesGcmSealer(b"s" * 32)
    dispatcher = Dispatcher(store, clock=clock, owner="test", rand=lambda: 0.5)
    handler = MailJobHandler(mailer, sealer, mail_from=FROM, clock=clock)  # type: ignore[arg-type]
    dispatcher.register(MAIL_JOB_KIND, handler, RetryPolicy(max_attempts=3, base_delay=10))
    return store, sealer, dispatcher


async def test_reset_mail_reaches_smtp_with_its_link_and_no_log_holds_it(
    smtp_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The secret link is in the delivered message and in no keyturn log record."""
    server = smtp_server()
    clock = FrozenClock()
    store, sealer, dispatcher = _pipeline(SmtpMailer(server.url()), clock)
    with caplog.at_level(logging.DEBUG):
        job = await enqueue_mail(
            store,
            sealer,
            kind=MailKind.PASSWORD_RESET,
            to="alice@example.com",
            context=CONTEXT,
            clock=clock,
        )
        assert TOKEN.encode() not in job.payload, "payload stored unsealed"
        assert await dispatcher.run_once() == 1
    [received] = server.recorder.messages
    assert received["To"] == "alice@example.com"
    assert TOKEN in received.as_string()
    ours = [r for r in caplog.records if r.name.startswith("keyturn")]
    assert any("password_reset" in r.getMessage() and "sent" in r.getMessage() for r in ours)
    assert any(recipient_tag("alice@example.com") in r.getMessage() for r in ours)
    for record in ours:
        assert TOKEN not in record.getMessage() and "alice@example.com" not in record.getMessage()
    stored = await store.get(job.id)
    assert stored is not None and stored.state is JobState.SENT


async def test_smtp_451_leaves_the_job_to_be_retried(smtp_server: StartServer) -> None:
    """A temporary refusal reschedules the mail after the backoff."""
    server = smtp_server(rcpt_reply="451 4.7.1 greylisted")
    clock = FrozenClock()
    store, sealer, dispatcher = _pipeline(SmtpMailer(server.url()), clock)
    job = await enqueue_mail(
        store,
        sealer,
        kind=MailKind.PASSWORD_RESET,
        to="a@example.com",
        context=CONTEXT,
        clock=clock,
    )
    await dispatcher.run_once()
    stored = await store.get(job.id)
    assert stored is not None and stored.state is JobState.PENDING
    assert stored.next_attempt_at == clock.now() + 10
    assert stored.last_error == "delivery_retryable: smtp 451: recipient deferred"


async def test_smtp_550_kills_the_job(smtp_server: StartServer) -> None:
    """A permanent refusal is not retried, and last_error quotes only the code."""
    server = smtp_server(rcpt_reply=f"550 5.1.1 no such user; your link was {LINK}")
    clock = FrozenClock()
    store, sealer, dispatcher = _pipeline(SmtpMailer(server.url()), clock)
    job = await enqueue_mail(
        store,
        sealer,
        kind=MailKind.PASSWORD_RESET,
        to="a@example.com",
        context=CONTEXT,
        clock=clock,
    )
    await dispatcher.run_once()
    stored = await store.get(job.id)
    assert stored is not None and stored.state is JobState.DEAD
    assert stored.last_error is not None and TOKEN not in stored.last_error


async def test_payload_that_does_not_open_is_dead_at_once() -> None:
    """A job sealed with another key (or altered) can never be sent: dead, not retried."""
    clock = FrozenClock()
    mailer = MemoryMailer()
    store, _, dispatcher = _pipeline(mailer, clock)
    other = AesGcmSealer(b"o" * 32)
    job = await enqueue_mail(
        store, other, kind=MailKind.TEST_MESSAGE, to="a@example.com", context={}, clock=clock
    )
    await dispatcher.run_once()
    stored = await store.get(job.id)
    assert stored is not None and stored.state is JobState.DEAD
    assert stored.last_error == "delivery_permanent: mail job payload does not open"
    assert mailer.sent == []


async def test_folder_write_failure_is_retryable(tmp_path: object) -> None:
    """An OSError from a mailer (disk full) is a temporary failure."""
    clock = FrozenClock()

    class FullDisk(MemoryMailer):
        async def send(self, message: object) -> None:  # type: ignore[override]
            raise OSError("No space left on device")

    store, sealer, dispatcher = _pipeline(FullDisk(), clock)
    job = await enqueue_mail(
        store, sealer, kind=MailKind.TEST_MESSAGE, to="a@example.com", context={}, clock=clock
    )
    await dispatcher.run_once()
    stored = await store.get(job.id)
    assert stored is not None and stored.state is JobState.PENDING
    assert stored.last_error == "delivery_retryable: mail send failed: OSError"


def test_handler_refuses_an_invalid_sender() -> None:
    """A bad --mail-from fails at start-up, not at the first mail."""
    with pytest.raises(ConfigurationError):
        MailJobHandler(MemoryMailer(), AesGcmSealer(b"s" * 32), mail_from="x", clock=FrozenClock())


def test_recipient_tag_is_short_keyed_and_case_insensitive() -> None:
    """The tag correlates one address across lines without revealing or confirming it."""
    tag = recipient_tag("Alice@Example.com", key=b"k")
    assert tag == recipient_tag("alice@example.com ", key=b"k")
    assert tag != recipient_tag("alice@example.com", key=b"other")
    assert tag.startswith("rcpt-") and len(tag) == 17 and "alice" not in tag


def test_redact_urls_cuts_queries_and_fragments() -> None:
    """Any URL's query or fragment (where tokens live) is replaced before logging."""
    text = f"GET {LINK} then https://id.example/verify-email#token=abc and https://ok.example/a"
    redacted = redact_urls(text)
    assert TOKEN not in redacted and "token=abc" not in redacted
    assert "https://id.example/password/reset?[redacted]" in redacted
    assert "https://ok.example/a" in redacted


def test_redacting_filter_scrubs_log_records(caplog: pytest.LogCaptureFixture) -> None:
    """Installed on a logger, the filter removes a link even from a careless log call."""
    logger = logging.getLogger("keyturn.test.redaction")
    logger.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="keyturn.test.redaction"):
            logger.info("access %s %d", LINK, 200)
    finally:
        logger.filters.clear()
    assert TOKEN not in caplog.text and "reset?[redacted] 200" in caplog.text
