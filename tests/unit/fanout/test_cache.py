"""The trusted LRU every in-process cache of store reads uses."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from keyturn.clock import FrozenClock
from keyturn.fanout.buses import MemoryHub
from keyturn.fanout.cache import DUE, FRESH, STALE, TrustedCache
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
    cache.put("x", entry)
    assert cache.get("x") is entry and cache.get("y") is None
    assert cache.check(entry, 100.9, user_id="u", sid=None) == FRESH
    assert cache.check(entry, 101.0, user_id="u", sid=None) == DUE
    assert cache.check(entry, 101.9, user_id="u", sid=None) == DUE
    assert cache.check(entry, 102.0, user_id="u", sid=None) == STALE


async def test_an_entry_of_the_live_epoch_is_trusted_until_revoked() -> None:
    """Tagged with the bus's epoch: usable for cache_ttl, unless the revocation
    replica lists its session or a cut-off of its user after the read (rule 5)."""
    fanout = FanOut(SETTINGS, bus=MemoryHub(FrozenClock()).bus())
    replica = Replica()
    fanout.attach(revocations=replica)
    await fanout.start()
    cache: TrustedCache[str, Entry] = TrustedCache(fanout, max_entries=10)
    entry = Entry("x", 100.0, trusted=fanout.trusted(fanout.begin()))
    assert cache.check(entry, 200.0, user_id="u", sid="h") == FRESH  # past the bound
    assert cache.check(entry, 350.0, user_id="u", sid="h") == DUE  # past half of cache_ttl
    replica.entries.append(Revocation("sid", "h", 200.0, 999.0))
    assert cache.check(entry, 350.0, user_id="u", sid="h") == STALE
    assert cache.check(entry, 101.0, user_id="u", sid="h") == FRESH  # within the bound
    assert cache.check(entry, 350.0, user_id="u", sid="other") == DUE
    replica.entries.append(Revocation("user", "u", 150.0, 999.0))
    assert cache.check(entry, 350.0, user_id="u", sid=None) == STALE
    assert cache.check(entry, 400.0, user_id="v", sid=None) == STALE  # past cache_ttl
    await fanout.close()


def test_purge_drops_entries_past_their_limit_and_tells_the_index() -> None:
    """purge() keeps entries still inside their trust limit and drops the rest,
    reporting each through on_evict (an index beside the cache must stay right)."""
    evicted: list[str] = []
    cache: TrustedCache[str, Entry] = TrustedCache(
        FanOut(SETTINGS), max_entries=10, on_evict=lambda key, _: evicted.append(key)
    )
    cache.put("old", Entry("old", 0.0))  # no bus: the limit is staleness_bound (2 s)
    cache.put("young", Entry("young", 9.0))
    assert cache.check(Entry("old", 0.0), 10.0, user_id="u", sid=None) == STALE
    assert cache.purge(10.0) == 1
    assert evicted == ["old"] and list(cache) == ["young"]
    assert cache.purge(10.0) == 0
