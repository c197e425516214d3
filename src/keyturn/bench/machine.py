"""The machine a number was measured on, and the CPU pinning that makes numbers
comparable.

keyturn's HTTP benchmarks follow ``shared/research/perf-anchors.md``: the server
gets CPU 0 and the load generator CPU 1, so the server's throughput is the
throughput of one core and the client never steals its CPU. Pinning needs Linux's
``sched_setaffinity`` and at least two CPUs; elsewhere everything still runs, and
every caption says it was not pinned.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CLIENT_CPU",
    "SERVER_CPU",
    "Machine",
    "can_pin",
    "cpu_model",
    "machine",
    "machine_caption",
    "pin_process",
    "pinned",
]

#: The CPU the measured server runs on, and the one the load generator runs on.
SERVER_CPU = 0
CLIENT_CPU = 1


@dataclass(frozen=True)
class Machine:
    """What a number was measured on."""

    platform: str
    cpu_model: str
    cpu_count: int
    python: str
    load_average: tuple[float, float, float]
    pinning: bool

    def caption(self, *, pinned: bool = True) -> str:
        """One line for a table caption; ``pinned=False`` for runs that do not pin."""
        load = " ".join(f"{value:.2f}" for value in self.load_average)
        if not pinned:
            placement = "not pinned"
        elif self.pinning:
            placement = f"server on CPU {SERVER_CPU}, load generator on CPU {CLIENT_CPU}"
        else:
            placement = "no CPU pinning (needs sched_setaffinity and 2 CPUs)"
        return (
            f"{self.platform} | {self.cpu_model} x {self.cpu_count} | {self.python} | "
            f"load average {load} (1/5/15 min) | {placement}"
        )

    def as_dict(self) -> dict[str, object]:
        """The machine for ``--json`` output."""
        return {
            "platform": self.platform,
            "cpu_model": self.cpu_model,
            "cpu_count": self.cpu_count,
            "python": self.python,
            "load_average": list(self.load_average),
            "pinning": self.pinning,
        }


def cpu_model() -> str:
    """The CPU model from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def can_pin() -> bool:
    """Whether the server and the load generator can get a CPU each."""
    if not hasattr(os, "sched_setaffinity"):
        return False
    try:
        allowed = os.sched_getaffinity(0)
    except OSError:
        return False
    return {SERVER_CPU, CLIENT_CPU} <= allowed


def machine() -> Machine:
    """The machine as it is now (the load average changes: call it per report)."""
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return Machine(
        platform=platform.platform(),
        cpu_model=cpu_model(),
        cpu_count=os.cpu_count() or 1,
        python=f"{platform.python_implementation()} {platform.python_version()}",
        load_average=(load[0], load[1], load[2]),
        pinning=can_pin(),
    )


def machine_caption(*, pinned: bool = True) -> str:
    """:meth:`Machine.caption` of the machine as it is now."""
    return machine().caption(pinned=pinned)


@contextlib.contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Run the body with the calling thread pinned to ``cpu`` (no-op if that cannot
    work, or for ``cpu=None``).

    A process started inside inherits the pinning: this is how a server or ``wrk``
    lands on its CPU without a ``preexec_fn`` (unsafe while other threads run, as
    Rich's progress bars do). Only the calling thread is pinned, so the rest of this
    process is unaffected.
    """
    if cpu is None or not can_pin():
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def pin_process(pid: int, cpus: Iterable[int] | None) -> bool:
    """Move every thread of process ``pid`` onto ``cpus`` (``None``: every CPU this
    process may use). Threads it starts later inherit from the thread that starts
    them. Returns False when the platform cannot do it."""
    if not hasattr(os, "sched_setaffinity"):
        return False
    target = set(cpus) if cpus is not None else os.sched_getaffinity(0)
    try:
        threads = [int(name) for name in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        threads = [pid]
    moved = False
    for tid in threads:
        with contextlib.suppress(OSError):  # a thread that just ended
            os.sched_setaffinity(tid, target)
            moved = True
    return moved
