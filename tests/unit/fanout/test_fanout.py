"""The fan-out core: the wire format, publishing and applying, and the trust rules."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from keyturn.clock import FrozenClock
from keyturn.fanout.buses import MemoryHub
from keyturn.fanout.buses.liveness import Liveness
from keyturn.fanout.changes import Change, decode, encode, encode_chunks
from keyturn.fanout.instance import FanOut
from keyturn.settings import Settings
from keyturn.stores.records import Revocation, Session

SETTINGS = Settings(staleness_bound=2.0, cache_ttl=300)


def session(id_hash: str, user_id: str = "u1") -> Session:
    return Session(
        id_hash=id_hash,
        handle="h" * 16,
        user_id=user_id,
        created_at=0.0,
        last_seen_at=0.0,
        idle_timeout=60,
        expires_at=100.0,
        auth_time=0.0,
    )


class Caches:
    """Records what a FanOut applies (stands in for the session and user caches)."""

    def __init__(self) -> None:
        self.forgotten: list[str] = []
        self.users: list[str] = []
        self.entries: list[Revocation] = []
        self.reloads = 0
        self.resyncs = 0

    def forget(self, id_hash: str) -> None:
        self.forgotten.append(id_hash)

    def forget_user(self, user_id: str) -> None:
        self.users.append(user_id)

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
        self.resyncs += 1

    async def reload(self) -> bool:
        self.reloads += 1
        return True


async def instance(hub: MemoryHub) -> tuple[FanOut, Caches]:
    fanout = FanOut(SETTINGS, bus=hub.bus())
    caches = Caches()
    fanout.attach(sessions=caches, users=caches, revocations=caches, keys=caches)
    await fanout.start()
    return fanout, caches


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


# --- the wire format -------------------------------------------------------------------


def test_every_kind_of_change_survives_encoding() -> None:
    """encode/decode round-trips sessions, user, revocation and key changes."""
    entries = (Revocation("jti", "j1", 1.5, 900.0), Revocation("user", "u1", 2.0, 950.0))
    for change in (
        Change.sessions_ended([session("a" * 64), session("b" * 64)]),
        Change.user_changed("u1", "disabled"),
        Change.revoked(entries),
        Change.keys_changed(),
    ):
        origin, decoded = decode(encode(change, "me"))
        assert origin == "me"
        assert decoded == change


def test_encoding_is_compact_json() -> None:
    """Short keys and no whitespace: a one-session change fits in ~100 bytes."""
    text = encode(Change.sessions_ended([session("a" * 64)]), "0123456789abcdef")
    assert " " not in text
    assert len(text) < 130
    assert json.loads(text)["h"] == ["a" * 64]


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "[]",
        '{"o": "x", "k": "zz"}',
        '{"k": "k"}',
        '{"o": "x", "k": "u"}',
        '{"o": "x", "k": "s", "h": "abc"}',
        '{"o": "x", "k": "s", "h": [1]}',
        '{"o": "x", "k": "r", "r": [["nope", "v", 1, 2]]}',
        '{"o": "x", "k": "r", "r": [["jti", "v", "1", 2]]}',
        '{"o": "x", "k": "r", "r": [["jti", "v", 1, Infinity]]}',
        '{"o": "' + "x" * 300 + '", "k": "k"}',
    ],
)
def test_malformed_messages_are_refused(message: str) -> None:
    """Anyone on the channel may write it: decode accepts only well-formed changes."""
    with pytest.raises(ValueError):
        decode(message)


def test_large_changes_are_split_under_the_limit() -> None:
    """A sign-out everywhere of 500 sessions becomes several messages under 7900
    bytes (PostgreSQL NOTIFY) that together carry every id."""
    hashes = [f"{n:064x}" for n in range(500)]
    change = Change("sessions", user_id="u1", id_hashes=tuple(hashes))
    chunks = encode_chunks(change, "me", max_bytes=7900)
    assert len(chunks) > 1
    assert all(len(chunk.encode()) <= 7900 for chunk in chunks)
    carried = [h for chunk in chunks for h in decode(chunk)[1].id_hashes]
    assert carried == hashes


# --- publishing and applying -----------------------------------------------------------


async def test_a_change_reaches_every_other_instance_and_not_back() -> None:
    """Published on one instance, applied on the others at once; the publisher
    applies it locally (once) and ignores its own echo."""
    hub = MemoryHub(FrozenClock())
    (a, on_a), (b, on_b), (c, on_c) = [await instance(hub) for _ in range(3)]
    await a.publish(Change.sessions_ended([session("a" * 64)]))
    assert on_a.forgotten == ["a" * 64]
    assert on_b.forgotten == ["a" * 64]
    assert on_c.forgotten == ["a" * 64]
    assert (a.received, b.received, c.received) == (0, 1, 1)


async def test_user_revocation_and_key_changes_reach_their_caches() -> None:
    """A user change drops the user's sessions and cached user; revocation
    entries are merged into the replica; a key change reloads the ring."""
    hub = MemoryHub(FrozenClock())
    (a, _), (_, on_b) = [await instance(hub) for _ in range(2)]
    await settle()  # the reload and resync of connecting
    on_b.resyncs = on_b.reloads = 0
    entry = Revocation("sid", "s1", 1.0, 2.0)
    await a.publish(Change.user_changed("u9", "disabled"))
    await a.publish(Change.revoked([entry]))
    await a.publish(Change.keys_changed())
    await settle()
    assert on_b.users == ["u9", "u9"]  # the session cache and the user cache
    assert on_b.entries == [entry]
    assert on_b.reloads == 1


async def test_publishing_while_the_bus_is_down_queues_and_delivers_later() -> None:
    """A publish never fails the caller: the change waits in the outbox and goes
    out when the bus is back."""
    hub = MemoryHub(FrozenClock())
    (a, _), (_, on_b) = [await instance(hub) for _ in range(2)]
    bus = a.bus
    assert bus is not None
    bus.disconnect()  # type: ignore[attr-defined]
    await a.publish(Change.sessions_ended([session("c" * 64)]))
    assert on_b.forgotten == []
    assert a.status()["queued"] == 1
    bus.reconnect()  # type: ignore[attr-defined]
    for _ in range(200):  # the outbox retries with a backoff from 50 ms
        if on_b.forgotten:
            break
        await asyncio.sleep(0.01)
    assert on_b.forgotten == ["c" * 64]
    await a.close()


async def test_a_new_epoch_resyncs_the_revocation_replica_and_reloads_keys() -> None:
    """Reconnecting means messages may have been missed: full resync (rule 4)."""
    hub = MemoryHub(FrozenClock())
    fanout, caches = await instance(hub)
    await settle()
    before = caches.resyncs, caches.reloads
    bus = fanout.bus
    assert bus is not None
    bus.disconnect()  # type: ignore[attr-defined]
    bus.reconnect()  # type: ignore[attr-defined]
    await settle()
    assert (caches.resyncs, caches.reloads) == (before[0] + 1, before[1] + 1)


async def test_garbage_on_the_channel_is_ignored() -> None:
    """A malformed message changes nothing and does not stop the listener."""
    hub = MemoryHub(FrozenClock())
    fanout, caches = await instance(hub)
    hub._send("{garbage")
    hub._send(encode(Change.sessions_ended([session("d" * 64)]), "other"))
    assert caches.forgotten == ["d" * 64]
    assert fanout.received == 1


# --- the trust rules ----------------------------------------------------------------------


async def test_without_a_bus_everything_gets_the_plain_bound() -> None:
    """Rule 2 without fan-out: no epoch, so every entry is trusted for the bound."""
    fanout = FanOut(SETTINGS)
    ticket = fanout.begin()
    assert fanout.trusted(ticket) is None
    assert fanout.limit(None) == SETTINGS.staleness_bound


async def test_an_entry_read_while_the_bus_is_alive_is_trusted_for_the_ttl() -> None:
    """Rule 1: alive bus, no race, same epoch: cache_ttl."""
    fanout, _ = await instance(MemoryHub(FrozenClock()))
    tag = fanout.trusted(fanout.begin())
    assert tag is not None
    assert fanout.limit(tag) == 300
    assert fanout.limit(tag, long=30) == 30


async def test_an_invalidation_during_the_read_means_the_plain_bound() -> None:
    """Rule 2: a session or user change applied while a read was in flight."""
    hub = MemoryHub(FrozenClock())
    (a, _), (b, _) = [await instance(hub) for _ in range(2)]
    ticket = b.begin()
    await a.publish(Change.user_changed("u1", "disabled"))
    assert b.trusted(ticket) is None
    assert b.trusted(ticket, races=False) is not None  # merges do not care


async def test_losing_the_bus_ends_the_trust_at_once_and_for_good() -> None:
    """Rules 3 and 4: while down, nothing is trusted past the bound; after a
    reconnection, entries of the old epoch still are not."""
    fanout, _ = await instance(MemoryHub(FrozenClock()))
    bus = fanout.bus
    assert bus is not None
    tag = fanout.trusted(fanout.begin())
    bus.disconnect()  # type: ignore[attr-defined]
    assert fanout.limit(tag) == SETTINGS.staleness_bound
    assert fanout.trusted(fanout.begin()) is None
    bus.reconnect()  # type: ignore[attr-defined]
    assert fanout.limit(tag) == SETTINGS.staleness_bound
    assert fanout.limit(fanout.trusted(fanout.begin())) == 300


async def test_the_replica_vetoes_long_trusted_entries() -> None:
    """Rule 5: a listed sid, or a cut-off at or after the read, outdates an entry."""
    fanout, caches = await instance(MemoryHub(FrozenClock()))
    assert not fanout.outdated("u1", "s1", 10.0)
    caches.entries.append(Revocation("sid", "s1", 11.0, 99.0))
    assert fanout.outdated("u1", "s1", 10.0)
    caches.entries.append(Revocation("user", "u2", 12.0, 99.0))
    assert fanout.outdated("u2", None, 12.0)
    assert not fanout.outdated("u2", None, 12.5)


def test_cache_ttl_is_never_shorter_than_the_bound() -> None:
    """A tiny cache_ttl cannot make fan-out trust less than no fan-out."""
    fanout = FanOut(Settings(staleness_bound=2.0, cache_ttl=1))
    assert fanout.cache_ttl == 2.0
    assert fanout.resync_interval == 2.0


# --- liveness ----------------------------------------------------------------------------


def test_liveness_epochs() -> None:
    """Verified within the timeout: same epoch; a lapse or a loss: a new one."""
    timer = FrozenClock(100.0)
    live = Liveness(0.2, timer=timer, clock=FrozenClock())
    assert live.epoch is None
    live.restart()
    first = live.epoch
    assert first is not None
    assert live.verified(timer.now()) is False
    assert live.epoch == first
    live.lost()
    assert live.epoch is None
    assert live.verified(timer.now()) is True
    assert live.epoch not in (None, first)


def test_a_late_answer_verifies_nothing() -> None:
    """A heartbeat answered after the timeout does not make the channel alive."""
    timer = FrozenClock(100.0)
    live = Liveness(0.05, timer=timer, clock=FrozenClock())
    assert live.verified(timer.now() - 1.0) is False
    assert live.epoch is None


def test_liveness_lapses_without_answers() -> None:
    """No verification for longer than the timeout: not alive (no sleep: the
    bus's timer is injected)."""
    timer = FrozenClock(100.0)
    live = Liveness(0.01, timer=timer, clock=FrozenClock())
    live.restart()
    assert live.epoch is not None
    timer.advance(0.011)
    assert live.epoch is None
    assert live.alive_since is None


def test_alive_since_is_posix_time_from_the_instance_clock() -> None:
    """alive_since reports when the epoch began on the instance's (POSIX) clock,
    not the bus's monotonic timer."""
    wall = FrozenClock(1_800_000_000.0)
    live = Liveness(1.0, timer=FrozenClock(5.0), clock=wall)
    live.restart()
    assert live.alive_since == 1_800_000_000.0


async def test_status_reports_the_bus(monkeypatch: Any) -> None:
    """status() names the bus and whether it is alive, for /healthz."""
    assert FanOut(SETTINGS).status()["bus"] == "off"
    fanout, _ = await instance(MemoryHub(FrozenClock()))
    status = fanout.status()
    assert status["bus"] == "memory"
    assert status["alive"] is True
