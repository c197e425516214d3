"""Mail in a running keyturn: the mailer, the sealer, the dispatcher and the flows.

:class:`MailRuntime` is built once per :class:`~keyturn.runtime.Keyturn` from the
settings: :class:`~keyturn.mail.smtp.SmtpMailer` when ``--smtp-url`` is set, else
:class:`~keyturn.mail.folder.FolderMailer` on ``--mail-outbox-dir`` (the embedded
default works with no mail server). Outbox payloads are sealed with AES-256-GCM
under a key derived from the key-encryption key, so every instance sharing the
database opens every job, and a database dump shows no link. The dispatcher
runs in the server's background (:meth:`start` / :meth:`stop`); several
instances share the queue safely through leases, and a slow or unreachable
SMTP server only delays the queue, never a request.
"""

from __future__ import annotations

import logging

from limits.aio.storage import Storage as LimitsStorage

from keyturn.accounts.auth import AuthService
from keyturn.audit import AuditLog
from keyturn.clock import Clock
from keyturn.keys.encryption import KeyEncryptor
from keyturn.mail.folder import FolderMailer
from keyturn.mail.jobs import MAIL_JOB_KIND, MailJobHandler
from keyturn.mail.mailer import Mailer
from keyturn.mail.smtp import SmtpMailer
from keyturn.outbox.dispatcher import Dispatcher, RetryPolicy
from keyturn.outbox.sealing import AesGcmSealer
from keyturn.outbox.store import OutboxStore
from keyturn.recovery.jobs import ResetRequestHandler
from keyturn.recovery.service import RESET_REQUEST_KIND, Recovery
from keyturn.recovery.store import AccountTokenStore
from keyturn.recovery.throttle import MailThrottle
from keyturn.settings import Settings

__all__ = ["OUTBOX_KEY_PURPOSE", "MailRuntime", "mailer_from_settings"]

logger = logging.getLogger("keyturn.mail")

#: The purpose the outbox sealing key is derived for (HKDF info).
OUTBOX_KEY_PURPOSE = "outbox sealing"
_TAG_KEY_PURPOSE = "mail recipient tag"


def mailer_from_settings(settings: Settings, clock: Clock) -> Mailer:
    """SMTP when ``--smtp-url`` is set, else the ``.eml`` folder.

    Raises:
        ConfigurationError: the SMTP URL is invalid.
    """
    if settings.smtp_url is not None:
        return SmtpMailer(settings.smtp_url.get_secret_value(), timeout=settings.smtp_timeout)
    return FolderMailer(settings.mail_outbox_dir, clock=clock)


class MailRuntime:
    """The mail side of one keyturn instance (see the module doc)."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        outbox: OutboxStore,
        tokens: AccountTokenStore,
        encryptor: KeyEncryptor,
        auth: AuthService,
        throttle_storage: LimitsStorage,
        throttle_clock: Clock,
        audit: AuditLog,
        mailer: Mailer | None = None,
    ) -> None:
        """Raises:
        ConfigurationError: an invalid SMTP URL or ``--mail-from``.
        """
        self.settings = settings
        self.mailer = mailer or mailer_from_settings(settings, clock)
        self.sealer = AesGcmSealer(encryptor.derive_key(OUTBOX_KEY_PURPOSE))
        self.outbox = outbox
        lease = settings.outbox_lease
        self.dispatcher = Dispatcher(
            outbox,
            clock=clock,
            batch_size=settings.outbox_batch_size,
            lease_seconds=lease,
            handler_timeout=min(60.0, lease / 2),
            poll_interval=settings.outbox_poll_interval,
        )
        policy = RetryPolicy(
            max_attempts=settings.mail_max_attempts,
            base_delay=settings.mail_retry_base,
            max_delay=settings.mail_retry_max,
        )
        tag_key = encryptor.derive_key(_TAG_KEY_PURPOSE)
        handler = MailJobHandler(
            self.mailer, self.sealer, mail_from=settings.mail_from, clock=clock, tag_key=tag_key
        )
        self.dispatcher.register(MAIL_JOB_KIND, handler, policy)
        self.recovery = Recovery(
            tokens=tokens,
            outbox=outbox,
            sealer=self.sealer,
            wake=self.dispatcher.wake,
            auth=auth,
            throttle=MailThrottle(throttle_storage, settings, throttle_clock),
            audit=audit,
            settings=settings,
            clock=clock,
            tag_key=tag_key,
        )
        self.dispatcher.register(
            RESET_REQUEST_KIND, ResetRequestHandler(self.recovery, self.sealer), policy
        )
        auth.accounts.listeners.append(self.recovery)
        self._holders = 0  # lifespans using the dispatcher (one app may nest another)

    def __repr__(self) -> str:
        return f"MailRuntime({self.mailer!r})"

    def start(self) -> None:
        """Prepare the outbox folder (embedded default) and run the dispatcher in
        the background of the current event loop.

        Each call needs one :meth:`stop`; the dispatcher runs until the last.

        Raises:
            ConfigurationError: the outbox folder is unusable (a symlink, a file).
        """
        self._holders += 1
        if self._holders > 1:
            return
        if isinstance(self.mailer, FolderMailer):
            self.mailer.prepare()
            logger.info("mail: no --smtp-url, writing .eml files to %s", self.mailer.directory)
        self.dispatcher.start()

    async def stop(self) -> None:
        """Stop the dispatcher after the last :meth:`start`'s holder; in-flight
        deliveries get 10 s, then go back to the queue."""
        if self._holders == 0:
            return
        self._holders -= 1
        if self._holders == 0:
            await self.dispatcher.stop(grace=10.0)
