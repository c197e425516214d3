"""Time, injected.

Every expiry and timeout in keyturn asks a :class:`Clock` for the time, so tests
move time forward instead of sleeping.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """A source of wall-clock time as POSIX seconds (float, UTC)."""

    def now(self) -> float:
        """Return the current time in seconds since the epoch."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()


class MonotonicClock:
    """Seconds from :func:`time.monotonic`, for timing intervals (a bus's
    heartbeats): a step of the wall clock cannot stretch or shrink them. Its
    readings mean nothing as POSIX times; never compare them with one."""

    def now(self) -> float:
        return time.monotonic()


class FrozenClock:
    """A clock that moves only when told to; for tests."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self._now += seconds


def to_datetime(timestamp: float) -> datetime:
    """Convert POSIX seconds to an aware UTC datetime."""
    return datetime.fromtimestamp(timestamp, tz=UTC)


def isoformat(timestamp: float) -> str:
    """Render POSIX seconds as an ISO 8601 UTC string with a ``Z`` suffix
    (whole seconds; ``time.strftime`` is three times cheaper than ``datetime``
    on the per-request path of ``/auth/whoami``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
