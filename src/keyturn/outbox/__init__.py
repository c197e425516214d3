"""The outbox: durable side effects that survive a restart and never block a request.

A request that must cause something outside keyturn (a mail, a back-channel logout,
#13) enqueues a job and answers at once; a :class:`Dispatcher` on every instance
claims due jobs with a lease, runs the handler registered for the job's ``kind``,
and records sent / retry-later (exponential backoff, jitter, cap) / dead.
Owns: records and the store Protocol (``store``), the memory reference
(``memory``), the dispatcher, an AES-GCM :class:`Sealer`. Imports no framework and
no other keyturn domain: handlers live with their domain (``keyturn.mail.jobs``).

Guarantees: at-least-once delivery, one holder at a time (a lease); a claim
counts as an attempt, so a job that crashes its worker dies after
``max_attempts``; payloads are sealed by the caller and never logged.

Integration (#14 / #13 wiring):
- Runtime: build one ``Dispatcher(store, clock=...)`` per process, register
  ``"mail"`` (``keyturn.mail.MailJobHandler``) and later ``"backchannel_logout"``,
  ``start()`` it in the app lifespan and ``await stop(grace=10)`` on shutdown;
  call ``wake()`` after each enqueue. The CLI's maintenance purges old jobs.
- Sealer: adapt ``KeyEncryptor.encrypt/decrypt`` with kid ``"outbox"`` (or
  :class:`AesGcmSealer` with a key derived from the KEK).
- SQL store + Alembic migration, one table::

    outbox_jobs(id varchar(32) pk, kind varchar(64), payload bytea/blob,
                state varchar(8), attempts int, next_attempt_at float,
                lease_owner varchar(128) null, lease_expiry float null,
                created_at float, updated_at float, last_error varchar(200) null)
    index (state, next_attempt_at); index (state, updated_at) for purge

  Claim on PostgreSQL: ``UPDATE outbox_jobs SET lease_owner=:o, lease_expiry=:now+:l,
  attempts=attempts+1 WHERE id IN (SELECT id FROM outbox_jobs WHERE state='pending'
  AND kind = ANY(:kinds) AND next_attempt_at <= :now AND (lease_expiry IS NULL OR
  lease_expiry <= :now) ORDER BY next_attempt_at LIMIT :n FOR UPDATE SKIP LOCKED)
  RETURNING *``. On SQLite (one writer): the same ``UPDATE ... WHERE id IN
  (SELECT ... LIMIT :n) RETURNING *`` without the locking clause. complete / fail /
  dead / release add ``AND lease_owner = :o AND lease_expiry > :now`` and check
  the row count.
- Redis is not needed: the queue needs durability the SQL store already has.

Proposed settings: ``--outbox-poll-interval`` (float, 5 s), ``--outbox-lease``
(float, 120 s), ``--outbox-batch-size`` (int, 10), ``--outbox-retention`` (int,
7 days for sent, 30 days for dead). Per kind, a :class:`RetryPolicy`.

HTTP: none. ``DeliveryError`` and subclasses never reach a caller; if the web
layer maps them anyway, 502 ``delivery_failed`` / 503 ``delivery_retryable``.
"""

from keyturn.outbox.dispatcher import Dispatcher, Handler, RetryPolicy, Waiter, wait_for_wakeup
from keyturn.outbox.memory import MemoryOutboxStore
from keyturn.outbox.sealing import AesGcmSealer
from keyturn.outbox.store import JobState, OutboxJob, OutboxStore, Sealer

__all__ = [
    "AesGcmSealer",
    "Dispatcher",
    "Handler",
    "JobState",
    "MemoryOutboxStore",
    "OutboxJob",
    "OutboxStore",
    "RetryPolicy",
    "Sealer",
    "Waiter",
    "wait_for_wakeup",
]
