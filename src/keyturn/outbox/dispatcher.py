"""The dispatcher: an asyncio task that delivers due outbox jobs.

It claims due jobs with a lease, runs the handler registered for each job's kind,
and records the outcome: sent, retried after an exponential backoff with jitter
(capped), or dead after the kind's maximum attempts. A handler failure is logged
and recorded, never raised: the loop keeps going. Logs name the job id, kind,
attempt and error code, never the payload.

Time comes from an injected :class:`~keyturn.clock.Clock`; waiting between polls
goes through an injectable ``waiter`` so unit tests drive the loop without
sleeping. ``wake()`` ends the current wait at once, so a job enqueued by a request
on this instance goes out without waiting for the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from keyturn.clock import Clock
from keyturn.errors import ConfigurationError, DeliveryError, PermanentDeliveryError
from keyturn.outbox.store import MAX_ERROR_LENGTH, OutboxJob, OutboxStore

__all__ = ["Dispatcher", "Handler", "RetryPolicy", "Waiter", "wait_for_wakeup"]

logger = logging.getLogger("keyturn.outbox")

#: Delivers one job; raises a :class:`~keyturn.errors.DeliveryError` on failure.
Handler = Callable[[OutboxJob], Awaitable[None]]
#: Waits until the event is set or the given seconds pass, whichever is first.
Waiter = Callable[[asyncio.Event, float], Awaitable[None]]


async def wait_for_wakeup(event: asyncio.Event, seconds: float) -> None:
    """The real waiter: return when ``event`` is set or after ``seconds``."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a kind of job is retried.

    The n-th failed attempt waits ``min(max_delay, base_delay * 2**(n-1))``,
    spread by ``±jitter`` (a fraction) so that many jobs failing together (an SMTP
    outage) do not come back in one burst, and never more than ``max_delay``.
    """

    max_attempts: int = 8
    base_delay: float = 10.0
    max_delay: float = 900.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_delay <= 0 or self.max_delay < self.base_delay:
            raise ConfigurationError("Retry policy: need max_attempts >= 1, 0 < base <= max.")
        if not 0 <= self.jitter < 1:
            raise ConfigurationError("Retry policy: jitter must be in [0, 1).")

    def delay(self, attempts: int, rand: float) -> float:
        """Seconds to wait after the ``attempts``-th failure; ``rand`` is in [0, 1)."""
        exponent = min(max(attempts - 1, 0), 62)  # 2**62 s is past any cap
        capped = min(self.max_delay, self.base_delay * math.pow(2, exponent))
        spread = capped * (1 + self.jitter * (2 * rand - 1))
        return min(self.max_delay, max(0.0, spread))


@dataclass(frozen=True, slots=True)
class _Registration:
    handler: Handler
    policy: RetryPolicy


def _default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _describe(exc: BaseException) -> str:
    """A short, secret-free account of a failure for logs and ``last_error``."""
    if isinstance(exc, DeliveryError):
        text = f"{exc.code}: {exc.detail}"
    elif isinstance(exc, TimeoutError):
        text = "timeout: the handler did not finish in time"
    else:  # an unexpected error's message may quote the payload: name only
        text = f"unexpected: {type(exc).__name__}"
    return text[:MAX_ERROR_LENGTH]


class Dispatcher:
    """Delivers outbox jobs for the kinds registered on it.

    Several dispatchers (one per instance) may share a store: leases ensure a job
    is delivered by one of them at a time, and a job whose holder died is picked
    up by another once its lease expires. Delivery is at least once: a holder
    that delivered but died before recording it leaves a job that is sent again,
    so handlers should be idempotent where they can (mail is not, and accepts it).
    ``handler_timeout`` must be shorter than ``lease_seconds``.
    """

    def __init__(
        self,
        store: OutboxStore,
        *,
        clock: Clock,
        owner: str | None = None,
        batch_size: int = 10,
        lease_seconds: float = 120.0,
        handler_timeout: float = 60.0,
        poll_interval: float = 5.0,
        waiter: Waiter = wait_for_wakeup,
        rand: Callable[[], float] | None = None,
    ) -> None:
        """Raises:
        ConfigurationError: ``handler_timeout`` is not below ``lease_seconds``,
            or a count or interval is not positive.
        """
        if batch_size < 1 or poll_interval <= 0 or handler_timeout <= 0:
            raise ConfigurationError("Outbox: batch size and intervals must be positive.")
        if handler_timeout >= lease_seconds:
            raise ConfigurationError("Outbox: the handler timeout must be below the lease.")
        self._store = store
        self._clock = clock
        self.owner = owner or _default_owner()
        self._batch_size = batch_size
        self._lease_seconds = lease_seconds
        self._handler_timeout = handler_timeout
        self._poll_interval = poll_interval
        self._waiter = waiter
        self._rand = rand or random.SystemRandom().random
        self._handlers: dict[str, _Registration] = {}
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Dispatcher(owner={self.owner!r}, kinds={sorted(self._handlers)!r})"

    def register(self, kind: str, handler: Handler, policy: RetryPolicy | None = None) -> None:
        """Deliver jobs of ``kind`` with ``handler``, retried per ``policy``.

        Raises:
            ConfigurationError: ``kind`` already has a handler.
        """
        if kind in self._handlers:
            raise ConfigurationError(f"Outbox: a handler for {kind!r} is already registered.")
        self._handlers[kind] = _Registration(handler, policy or RetryPolicy())

    def wake(self) -> None:
        """Poll now instead of at the end of the current wait (call after enqueue)."""
        self._wakeup.set()

    async def run_once(self) -> int:
        """Claim one batch of due jobs, deliver them concurrently, record outcomes.

        Returns the number of jobs claimed. Handler errors are recorded, not
        raised; an error of the store itself propagates.
        """
        if not self._handlers:
            return 0
        jobs = await self._store.claim(
            owner=self.owner,
            kinds=frozenset(self._handlers),
            now=self._clock.now(),
            lease_seconds=self._lease_seconds,
            limit=self._batch_size,
        )
        outcomes = await asyncio.gather(
            *(self._deliver(job) for job in jobs), return_exceptions=True
        )
        for job, outcome in zip(jobs, outcomes, strict=True):
            if isinstance(outcome, BaseException):  # recording the outcome failed
                logger.warning(
                    "outbox: job %s (kind %s): recording the outcome failed: %s",
                    job.id,
                    job.kind,
                    type(outcome).__name__,
                )
        return len(jobs)

    async def _deliver(self, job: OutboxJob) -> None:
        registration = self._handlers[job.kind]
        policy = registration.policy
        try:
            await asyncio.wait_for(registration.handler(job), self._handler_timeout)
        except asyncio.CancelledError:
            # Stopping past the grace period: hand the job back for another instance.
            # If the store is down too, the lease simply expires: same outcome, later.
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    self._store.release(job.id, owner=self.owner, now=self._clock.now())
                )
            logger.info("outbox: released job %s (kind %s) on stop", job.id, job.kind)
            raise
        except Exception as exc:
            await self._failed(job, policy, exc)
        else:
            recorded = await self._store.complete(job.id, owner=self.owner, now=self._clock.now())
            logger.info(
                "outbox: delivered job %s (kind %s, attempt %d)%s",
                job.id,
                job.kind,
                job.attempts,
                "" if recorded else " but its lease had expired",
            )

    async def _failed(self, job: OutboxJob, policy: RetryPolicy, exc: Exception) -> None:
        error = _describe(exc)
        now = self._clock.now()
        permanent = isinstance(exc, PermanentDeliveryError)
        if permanent or job.attempts >= policy.max_attempts:
            await self._store.mark_dead(job.id, owner=self.owner, now=now, error=error)
            logger.error(
                "outbox: job %s (kind %s) is dead after attempt %d/%d: %s",
                job.id,
                job.kind,
                job.attempts,
                policy.max_attempts,
                error,
            )
            return
        delay = policy.delay(job.attempts, self._rand())
        await self._store.fail(
            job.id, owner=self.owner, now=now, error=error, next_attempt_at=now + delay
        )
        logger.warning(
            "outbox: job %s (kind %s) attempt %d/%d failed: %s; next attempt in %.0f s",
            job.id,
            job.kind,
            job.attempts,
            policy.max_attempts,
            error,
            delay,
        )

    async def run(self) -> None:
        """Deliver until :meth:`stop`: claim, deliver, then wait for a poll or wake."""
        while not self._stopping:
            self._wakeup.clear()
            claimed = 0
            try:
                claimed = await self.run_once()
            except Exception as exc:  # the store is down: try again at the next poll
                logger.warning("outbox: claiming jobs failed: %s", type(exc).__name__)
            if self._stopping:
                break
            if claimed < self._batch_size:
                await self._waiter(self._wakeup, self._poll_interval)

    def start(self) -> None:
        """Run :meth:`run` as a background task on the current event loop.

        Raises:
            RuntimeError: the dispatcher is already running.
        """
        if self._task is not None and not self._task.done():
            raise RuntimeError("The dispatcher is already running.")
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self.run(), name="keyturn-outbox")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop polling; let in-flight deliveries finish within ``grace`` seconds,
        then cancel them, releasing their leases so another instance delivers them."""
        self._stopping = True
        self._wakeup.set()
        task, self._task = self._task, None
        if task is None:
            return
        done, _ = await asyncio.wait({task}, timeout=grace)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
