"""The trusted LRU every in-process cache of store reads uses."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from keyturn.clock import FrozenClock
from keyturn.fanout.buses import MemoryHub
from keyturn.fanout.cache import TrustedCache
from keyturn.fanout.instance import FanOut
from keyturn.settings import Settings
from keyturn.stores.records import Revocation

SETTINGS = Settings(staleness_bound=2.0, cache_ttl=300)


@dataclass(slots=True)
class Entry:
    value: str
    fetched_at: float
    trusted: int | None = None


class Replica:
    """A revocation replica that lists what a test puts in it."""

    def __init__(self) -> None:
        self.entries: list[Revocation] = []

    def current(self) -> bool:
        return True

    def apply_remote(self, entry: Revocation) -> None:
        self.entries.append(entry)

    def is_sid_revoked(self, sid: str) -> bool:
        return any(e.kind == "sid" and e.value == sid for e in self.entries)

    def cutoff(self, user_id: str) -> float | None:
        times = [e.created_at for e in self.entries if e.kind == "user" and e.value == user_id]
        return max(times, default=None)

    async def resync(self) -> None:
        return None


def test_the_bound_evicts_the_least_recently_used_and_says_so() -> None:
    """Past max_entries the oldest untouched entry goes, reported through on_evict."""
    evicted: list[str] = []
    cache: TrustedCache[str, Entry] = TrustedCache(
        FanOut(SETTINGS), max_entries=2, on_evict=lambda key, _: evicted.append(key)
    )
    cache.put("a", Entry("a", 0.0))
    cache.put("b", Entry("b", 0.0))
    cache.touch("a")
    cache.put("c", Entry("c", 0.0))
    assert evicted == ["b"] and list(cache) == ["a", "c"]
    assert cache.pop("a") is not None and cache.pop("a") is None and evicted == ["b"]


def test_max_entries_must_be_positive() -> None:
    """A cache that could hold nothing is a configuration mistake."""
    with pytest.raises(ValueError, match="at least 1"):
        TrustedCache(FanOut(SETTINGS), max_entries=0)


def test_without_a_bus_entries_are_trusted_for_the_bound() -> None:
    """No bus: usable while younger than staleness_bound, re-read ahead after half."""
    cache: TrustedCache[str, Entry] = TrustedCache(FanOut(SETTINGS), max_entries=10)
    entry = Entry("x", 100.0)
    limit = cache.limit(entry)
    assert limit == 2.0 and cache.limit(None) == 2.0
    assert cache.usable(entry, 101.9, limit, user_id="u", sid=None)
    assert not cache.usable(entry, 102.0, limit, user_id="u", sid=None)
    assert not cache.due(entry, 100.9, limit) and cache.due(entry, 101.0, limit)


async def test_an_entry_of_the_live_epoch_is_trusted_until_revoked() -> None:
    """Tagged with the bus's epoch: usable for cache_ttl, unless the revocation
    replica lists its session or a cut-off of its user after the read (rule 5)."""
    fanout = FanOut(SETTINGS, bus=MemoryHub(FrozenClock()).bus())
    replica = Replica()
    fanout.attach(revocations=replica)
    await fanout.start()
    cache: TrustedCache[str, Entry] = TrustedCache(fanout, max_entries=10)
    entry = Entry("x", 100.0, trusted=fanout.trusted(fanout.begin()))
    limit = cache.limit(entry)
    assert limit == 300.0
    assert cache.usable(entry, 350.0, limit, user_id="u", sid="h")
    replica.entries.append(Revocation("sid", "h", 200.0, 999.0))
    assert not cache.usable(entry, 350.0, limit, user_id="u", sid="h")
    assert cache.usable(entry, 350.0, limit, user_id="u", sid="other")
    replica.entries.append(Revocation("user", "u", 150.0, 999.0))
    assert not cache.usable(entry, 350.0, limit, user_id="u", sid=None)
    assert not cache.usable(entry, 400.0, limit, user_id="v", sid=None)
    await fanout.close()
