"""E-mail: compose keyturn's messages and deliver them through SMTP or a folder.

Owns: the :class:`Mailer` protocol, :class:`SmtpMailer` (aiosmtplib; STARTTLS when
offered, implicit TLS for ``smtps://``, timeouts), :class:`FolderMailer` (the
embedded default: ``.eml`` files in ``./keyturn-outbox/``, 0700/0600), message
composition from the Jinja2 templates in ``templates/`` (text + HTML), the outbox
handler for mail jobs, and log redaction. Imports no framework; the only domain
it uses is :mod:`keyturn.outbox`. It never retries itself: the outbox does.

Integration (#14):
- Runtime: ``mailer = SmtpMailer(settings.smtp_url, timeout=settings.smtp_timeout)``
  when ``--smtp-url`` is set, else ``FolderMailer(settings.mail_outbox_dir, clock=clock)``;
  ``dispatcher.register(MAIL_JOB_KIND, MailJobHandler(mailer, sealer,
  mail_from=..., clock=...), RetryPolicy(max_attempts=..., ...))``. Install
  :class:`RedactingFilter` on keyturn's log handlers (and uvicorn's access log,
  which would otherwise log ``/password/reset?token=...``).
- Flows call ``enqueue_mail(store, sealer, kind=..., to=..., context=...)`` then
  ``dispatcher.wake()``. For same-timing forgot-password, the request should only
  enqueue a ``password_reset_request`` job (the typed address) for every input;
  its handler looks the account up, issues the token and enqueues the mail, so
  known and unknown addresses cost the request the same. Links are built from a
  configured public base URL, never the Host header.
- ``keyturn mail test ADDRESS``: ``await mailer.send(compose("test_message", ...))``
  directly, without the outbox, printing the error code on failure.

Proposed settings: ``--smtp-url`` (SecretStr URL, none = folder), ``--mail-from``
(str, ``keyturn <no-reply@localhost>``), ``--mail-outbox-dir`` (Path,
``keyturn-outbox``), ``--smtp-timeout`` (float, 10 s), ``--mail-max-attempts``
(int, 8), ``--mail-retry-base`` (float, 10 s), ``--mail-retry-max`` (float, 900 s),
``--password-reset-ttl`` (1800 s, SPEC), ``--email-verify-ttl`` (86400 s),
``--email-change-ttl`` (3600 s), ``--require-verified-email`` (bool, SPEC).

Proposed table (tokens; the queue is ``outbox_jobs``, see :mod:`keyturn.outbox`)::

    account_tokens(token_hash char(64) pk, user_id fk, purpose varchar(16)
                   -- password_reset | verify_email | email_change,
                   new_email varchar(320) null, created_at float, expires_at float)
    index (user_id, purpose)

Tokens: ``secrets.token_urlsafe(32)`` (256 bits) in the link; stored as SHA-256
(a fast hash suffices for a 256-bit random secret); issuing one deletes the
user's earlier tokens of that purpose in the same transaction (newer wins);
redeeming is one ``DELETE ... WHERE token_hash=:h AND expires_at>:now RETURNING``
(single use, no race); a password change or reset deletes the user's
``password_reset`` tokens; an e-mail change deletes all three kinds.

HTTP: ``DeliveryError`` never reaches a caller (the flows answer 202 first).
"""

from keyturn.mail.compose import MailKind, compose, parse_mail_from
from keyturn.mail.folder import DEFAULT_OUTBOX_DIR, FolderMailer
from keyturn.mail.jobs import MAIL_JOB_KIND, MailJobHandler, enqueue_mail
from keyturn.mail.mailer import Mailer, MemoryMailer
from keyturn.mail.redact import RedactingFilter, recipient_tag, redact_urls
from keyturn.mail.smtp import SmtpMailer, classify_smtp_error
from keyturn.mail.url import SmtpUrl

__all__ = [
    "DEFAULT_OUTBOX_DIR",
    "MAIL_JOB_KIND",
    "FolderMailer",
    "MailJobHandler",
    "MailKind",
    "Mailer",
    "MemoryMailer",
    "RedactingFilter",
    "SmtpMailer",
    "SmtpUrl",
    "classify_smtp_error",
    "compose",
    "enqueue_mail",
    "parse_mail_from",
    "recipient_tag",
    "redact_urls",
]
