"""Mail through the outbox: enqueue from a request, compose and send from a worker.

A request calls :func:`enqueue_mail` and answers at once; the payload (kind,
recipient, context with the secret link) is sealed before it is stored. The
:class:`MailJobHandler`, registered on the dispatcher under :data:`MAIL_JOB_KIND`,
opens it, composes the message at send time (current templates, a fresh
``Date``) and hands it to the mailer. Its log lines carry the mail kind, the
job id and a :func:`~keyturn.mail.redact.recipient_tag`, never the link.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from keyturn.clock import Clock
from keyturn.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from keyturn.mail.compose import ContextValue, MailKind, compose, parse_mail_from
from keyturn.mail.mailer import Mailer
from keyturn.mail.redact import recipient_tag
from keyturn.outbox.store import OutboxJob, OutboxStore, Sealer

__all__ = ["MAIL_JOB_KIND", "MailJobHandler", "decode_mail_job", "encode_mail_job", "enqueue_mail"]

logger = logging.getLogger("keyturn.mail")

#: The outbox ``kind`` of mail jobs.
MAIL_JOB_KIND = "mail"
_VERSION = 1


def encode_mail_job(kind: MailKind, to: str, context: Mapping[str, ContextValue]) -> bytes:
    """Serialize a mail request (before sealing)."""
    document = {"v": _VERSION, "kind": kind.value, "to": to, "context": dict(context)}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def decode_mail_job(plaintext: bytes) -> tuple[MailKind, str, dict[str, ContextValue]]:
    """Parse what :func:`encode_mail_job` wrote.

    Raises:
        PermanentDeliveryError: not a mail job of a known version and kind.
    """
    try:
        document: Any = json.loads(plaintext)
        if document["v"] != _VERSION:
            raise ValueError("version")
        kind, to, context = MailKind(document["kind"]), document["to"], document["context"]
        if not isinstance(to, str) or not isinstance(context, dict):
            raise ValueError("shape")
    except (ValueError, KeyError, TypeError):
        raise PermanentDeliveryError("mail job payload is malformed") from None
    return kind, to, context


async def enqueue_mail(
    store: OutboxStore,
    sealer: Sealer,
    *,
    kind: MailKind,
    to: str,
    context: Mapping[str, ContextValue],
    clock: Clock,
    tag_key: bytes | None = None,
) -> OutboxJob:
    """Queue one message; call ``dispatcher.wake()`` afterwards for prompt delivery.

    ``tag_key`` keys the recipient hash of the log line (pass the handler's, so
    the "queued" and "sent" lines of one message carry the same tag).

    Raises:
        StoreUnavailable: the outbox store cannot be reached (SQL store).
    """
    sealed = sealer.seal(encode_mail_job(kind, to, context))
    job = await store.enqueue(MAIL_JOB_KIND, sealed, now=clock.now())
    tag = recipient_tag(to, key=tag_key)
    logger.info("mail: queued %s for %s (job %s)", kind.value, tag, job.id)
    return job


class MailJobHandler:
    """The outbox handler for :data:`MAIL_JOB_KIND` jobs.

    ``tag_key`` keys the recipient hash in logs (pass one shared by all instances
    to correlate their lines); ``product`` names the service in the messages.
    """

    def __init__(
        self,
        mailer: Mailer,
        sealer: Sealer,
        *,
        mail_from: str,
        clock: Clock,
        product: str = "keyturn",
        tag_key: bytes | None = None,
    ) -> None:
        """Raises:
        ConfigurationError: ``mail_from`` is not a valid address.
        """
        parse_mail_from(mail_from)
        self._mailer = mailer
        self._sealer = sealer
        self._mail_from = mail_from
        self._clock = clock
        self._product = product
        self._tag_key = tag_key

    def __repr__(self) -> str:
        return f"MailJobHandler({self._mailer!r}, mail_from={self._mail_from!r})"

    async def __call__(self, job: OutboxJob) -> None:
        """Open, compose and send the job's message.

        Raises:
            PermanentDeliveryError: the payload does not open or parse, the context
                does not fit the kind, or the server refused the message for good.
            RetryableDeliveryError: a temporary failure of the mailer.
        """
        try:
            plaintext = self._sealer.open(job.payload)
        except Exception:  # wrong key or tampered: retrying cannot help
            raise PermanentDeliveryError("mail job payload does not open") from None
        kind, to, context = decode_mail_job(plaintext)
        message = compose(
            kind, to, context, mail_from=self._mail_from, clock=self._clock, product=self._product
        )
        tag = recipient_tag(to, key=self._tag_key)
        try:
            await self._mailer.send(message)
        except DeliveryError as exc:
            logger.info("mail: %s for %s (job %s) failed: %s", kind.value, tag, job.id, exc.code)
            raise
        except (OSError, TimeoutError) as exc:
            raise RetryableDeliveryError(f"mail send failed: {type(exc).__name__}") from None
        logger.info("mail: sent %s to %s (job %s)", kind.value, tag, job.id)
