"""What a session costs per request on this machine (issue #3, item 11).

Run ``python benchmarks/sessions.py [--rounds N] [--duration S] [--quick]``.

1. **In process**: the median cost of :meth:`keyturn.sessions.manager.SessionManager.validate`
   on a cache hit (the hot path: a SHA-256 and a dict lookup, no I/O) and on a miss
   (the entry is forgotten first, so the store is read: session and user), for the
   memory store and the SQLite store (a WAL file holding ``--rows`` sessions).
   Each rep times a batch of each case in a rotated order; a figure is the median
   over reps.
2. **Over HTTP**: ``GET /auth/whoami`` with a session cookie against unauthenticated
   routes of the same ``keyturn serve`` (one worker pinned to CPU 0, ``wrk -t1 -c32``
   pinned to CPU 1, alternating rounds; see ``benchmarks/harness.py``). The user and
   the session are made through the real API (``POST /auth/register``, ``POST
   /auth/login``). The ratio is the median of the per-round ratios; the aim is
   ``whoami >= 0.9x`` the no-auth route.

The no-auth baseline is ``/livez`` (a small JSON answer through the same middleware
stack, no I/O); ``/healthz`` (a database ping: not cheap) is shown for reference.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from rich.console import Console, RenderableType
from rich.table import Table

from harness import (
    bench_server,
    compare_routes,
    login,
    machine_caption,
    register,
)
from keyturn.clock import SystemClock
from keyturn.sessions.ids import hash_secret
from keyturn.sessions.manager import SessionManager
from keyturn.settings import Settings
from keyturn.stores.factory import open_storage
from keyturn.stores.memory import MemoryStorage
from keyturn.stores.protocols import Storage
from keyturn.stores.records import User

PASSWORD = "correct horse battery staple"

AsyncOp = Callable[[], Awaitable[object]]

console = Console()


# --- 1. in process ----------------------------------------------------------------------


async def _batch_us(op: AsyncOp, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await op()
    return (time.perf_counter() - start) / n * 1e6


async def _calibrate(op: AsyncOp, batch_ms: float) -> int:
    await op()
    per_call = max(await _batch_us(op, 20), 0.1)
    return max(20, int(batch_ms * 1000 / per_call))


async def _fill(storage: Storage, manager: SessionManager, rows: int) -> str:
    """``rows`` sessions over ``rows // 10`` users; returns the secret of one of them."""
    users = max(1, rows // 10)
    secret = ""
    for u in range(users):
        user = User(
            id=str(uuid.uuid4()),
            email=f"user{u}@example.com",
            password_hash="$argon2id$unused",
            created_at=time.time(),
        )
        await storage.users.add(user)
        for _ in range(min(10, rows - u * 10)):
            secret = (await manager.create(user, ip="127.0.0.1", user_agent="bench")).secret
    return secret


async def _validation_samples(rows: int, reps: int, batch_ms: float) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="keyturn-bench-") as tmp:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'keyturn.db'}")
        sqlite = await open_storage(settings)
        stores: dict[str, Storage] = {"memory": MemoryStorage(), "SQLite": sqlite}
        ops: dict[str, AsyncOp] = {}
        try:
            for name, storage in stores.items():
                manager = SessionManager(storage.sessions, storage.users, settings, SystemClock())
                secret = await _fill(storage, manager, rows)
                id_hash = hash_secret(secret)

                def hit(
                    manager: SessionManager = manager, secret: str = secret
                ) -> Awaitable[object]:
                    return manager.validate(secret)

                async def miss(
                    manager: SessionManager = manager, secret: str = secret, id_hash: str = id_hash
                ) -> object:
                    manager.forget(id_hash)
                    return await manager.validate(secret)

                ops[f"{name} hit"] = hit
                ops[f"{name} miss"] = miss
            sizes = {name: await _calibrate(op, batch_ms) for name, op in ops.items()}
            samples: dict[str, list[float]] = {name: [] for name in ops}
            names = list(ops)
            for rep in range(reps):
                shift = rep % len(names)
                for name in names[shift:] + names[:shift]:
                    samples[name].append(await _batch_us(ops[name], sizes[name]))
            return samples
        finally:
            await sqlite.close()


def validation_section(args: argparse.Namespace) -> RenderableType:
    """Table: µs per ``SessionManager.validate`` call, hit and miss, memory and SQLite."""
    samples = asyncio.run(_validation_samples(args.rows, args.reps, args.batch_ms))
    table = Table(
        title=f"SessionManager.validate, µs per call (median of {args.reps} reps, "
        f"{args.rows:,} sessions in the store)"
    )
    table.add_column("store")
    for column in ("cache hit µs", "miss µs", "miss / hit", "hit: max req/s/core"):
        table.add_column(column, justify="right")
    for store in ("memory", "SQLite"):
        hit, miss = samples[f"{store} hit"], samples[f"{store} miss"]
        ratio = statistics.median(m / h for m, h in zip(miss, hit, strict=True))
        table.add_row(
            store,
            f"{statistics.median(hit):.1f}",
            f"{statistics.median(miss):.1f}",
            f"{ratio:.0f}x",
            f"{1e6 / statistics.median(hit):,.0f}",
        )
    table.caption = (
        f"{machine_caption(pinned=False)}\n"
        "hit: the entry is younger than the staleness bound (no I/O). miss: the entry was "
        "forgotten, so the store is read (session + user). A hit is what nearly every "
        "request pays; a miss happens once per session per staleness bound "
        "(2 s by default)."
    )
    return table


# --- 2. over HTTP ---------------------------------------------------------------------


def http_section(args: argparse.Namespace) -> RenderableType:
    """Table: whoami with a session cookie against no-auth routes, same server."""
    with bench_server(["--workers", "1"]) as server:
        register(server, "bench@example.com", PASSWORD)
        signed_in = login(server, "bench@example.com", PASSWORD)
        with server.client() as client:
            whoami = client.get("/auth/whoami", headers=signed_in.headers)
            if whoami.status_code != 200 or whoami.json().get("via") != "session":
                raise RuntimeError(f"whoami with the cookie: {whoami.status_code} {whoami.text}")
        return compare_routes(
            server,
            {
                "GET /auth/whoami (session cookie)": ("/auth/whoami", signed_in.headers),
                "GET /livez (no auth)": ("/livez", {}),
                "GET /healthz (no auth, DB ping)": ("/healthz", {}),
            },
            args,
            title="GET /auth/whoami with a session cookie vs no-auth routes, same server",
            log=console.log,
        )


SECTIONS: list[Callable[[argparse.Namespace], RenderableType]] = [
    validation_section,
    http_section,
]


def main(argv: list[str] | None = None) -> None:
    """Run every section and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=15, help="in-process reps (default 15)")
    parser.add_argument("--batch-ms", type=float, default=100.0, help="ms per in-process batch")
    parser.add_argument("--rows", type=int, default=10_000, help="sessions in each store")
    parser.add_argument("--rounds", type=int, default=5, help="HTTP rounds (default 5)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per HTTP run")
    parser.add_argument("--connections", type=int, default=32, help="HTTP connections")
    parser.add_argument(
        "--tool", choices=("auto", "wrk", "python"), default="auto", help="load generator"
    )
    parser.add_argument("--quick", action="store_true", help="few short rounds (a smoke run)")
    parser.add_argument("--only", choices=("validate", "http"), help="run one section")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.rows, args.rounds, args.duration = 5, 1000, 2, 3.0
    sections = SECTIONS
    if args.only is not None:
        sections = [validation_section if args.only == "validate" else http_section]
    for section in sections:
        console.print(section(args))


if __name__ == "__main__":
    sys.exit(main())
