"""The RevocationStore contract, run against every implementation."""

from __future__ import annotations

import asyncio
import math

from keyturn.stores.protocols import Storage
from keyturn.stores.records import Revocation

T0 = 1_800_000_000.0


async def test_add_assigns_increasing_sequence_numbers(storage: Storage) -> None:
    """Each appended entry gets a larger seq than the one before."""
    first = await storage.revocations.add(Revocation("jti", "a", T0, T0 + 60))
    second = await storage.revocations.add(Revocation("sid", "b", T0, T0 + 60))
    assert 0 < first.seq < second.seq
    assert (second.kind, second.value, second.created_at, second.expires_at) == (
        "sid",
        "b",
        T0,
        T0 + 60,
    )


async def test_changes_loads_everything_live_in_order(storage: Storage) -> None:
    """after_seq=0 and since=inf give every unexpired entry in seq order."""
    await storage.revocations.add(Revocation("jti", "old", T0, T0 + 10))
    a = await storage.revocations.add(Revocation("user", "u1", T0, T0 + 100))
    b = await storage.revocations.add(Revocation("sid", "s1", T0 + 1, T0 + 100))
    live = await storage.revocations.changes(after_seq=0, since=math.inf, now=T0 + 20)
    assert live == [a, b]


async def test_changes_after_seq_or_since_time(storage: Storage) -> None:
    """Incremental sync: entries past a seq, plus those created within the overlap."""
    early = await storage.revocations.add(Revocation("jti", "early", T0, T0 + 100))
    late_time = await storage.revocations.add(Revocation("jti", "late", T0 + 50, T0 + 100))
    newest = await storage.revocations.add(Revocation("jti", "newest", T0, T0 + 100))
    by_seq = await storage.revocations.changes(after_seq=late_time.seq, since=math.inf, now=T0)
    assert by_seq == [newest]
    by_time = await storage.revocations.changes(after_seq=newest.seq, since=T0 + 40, now=T0)
    assert by_time == [late_time]
    both = await storage.revocations.changes(after_seq=early.seq, since=T0 + 40, now=T0)
    assert both == [late_time, newest]


async def test_sweep_deletes_expired_entries(storage: Storage) -> None:
    """Sweep removes entries whose expires_at has passed and counts them."""
    await storage.revocations.add(Revocation("jti", "a", T0, T0 + 10))
    kept = await storage.revocations.add(Revocation("jti", "b", T0, T0 + 100))
    assert await storage.revocations.sweep(T0 + 10) == 1
    assert await storage.revocations.changes(after_seq=0, since=math.inf, now=T0) == [kept]


async def test_concurrent_adds_get_distinct_sequence_numbers(storage: Storage) -> None:
    """Concurrent appends never share a seq."""
    added = await asyncio.gather(
        *(storage.revocations.add(Revocation("jti", f"j{i}", T0, T0 + 60)) for i in range(20))
    )
    assert len({entry.seq for entry in added}) == 20
