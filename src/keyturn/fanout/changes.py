"""What changed, and how it travels between keyturn instances.

A :class:`Change` is one thing another instance must hear about (sessions
ended, a user changed, revocation entries, new signing keys). It travels as
compact JSON (:func:`encode`, :func:`decode`) on a :class:`ChangeBus`; the buses
are in :mod:`keyturn.fanout.buses`, and what an instance does with a change (and how
long it trusts its caches because of them) is :mod:`keyturn.fanout.instance`.

Messages come from the network, so :func:`decode` is strict; and a change only
ever takes trust away, so a forged one can refuse a credential, never accept one.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from keyturn.stores.records import Revocation, Session

__all__ = ["Change", "ChangeBus", "ChangeKind", "decode", "encode", "encode_chunks"]

ChangeKind = Literal["sessions", "user", "revocations", "keys"]
_KIND_CODES: Final[dict[str, ChangeKind]] = {
    "s": "sessions",
    "u": "user",
    "r": "revocations",
    "k": "keys",
}
_CODES: Final = {kind: code for code, kind in _KIND_CODES.items()}
_REVOCATION_KINDS: Final = ("jti", "sid", "user")
_MAX_TEXT: Final = 256  # ids, hashes, jtis: anything longer is not ours


@dataclass(frozen=True, slots=True)
class Change:
    """One thing that changed in the stores, as other instances need to hear it.

    - ``sessions``: sessions ended or rotated away (``id_hashes``; ``user_id``
      when they all belong to one user);
    - ``user``: an account changed (``reason``: ``disabled``, ``enabled``,
      ``password``); every cached session and user entry of it is dropped;
    - ``revocations``: entries of the revocation list (``revocations``);
    - ``keys``: the signing keys changed (the ring is re-read).
    """

    kind: ChangeKind
    user_id: str | None = None
    id_hashes: tuple[str, ...] = ()
    reason: str | None = None
    revocations: tuple[Revocation, ...] = ()

    @classmethod
    def sessions_ended(cls, sessions: Iterable[Session]) -> Change:
        """Sessions deleted from the store (sign-out, eviction, rotation, expiry)."""
        ended = list(sessions)
        users = {session.user_id for session in ended}
        return cls(
            "sessions",
            user_id=users.pop() if len(users) == 1 else None,
            id_hashes=tuple(session.id_hash for session in ended),
        )

    @classmethod
    def user_changed(cls, user_id: str, reason: str) -> Change:
        """An account was disabled, enabled or got a new password."""
        return cls("user", user_id=user_id, reason=reason)

    @classmethod
    def revoked(cls, entries: Iterable[Revocation]) -> Change:
        """New entries of the revocation list."""
        return cls("revocations", revocations=tuple(entries))

    @classmethod
    def keys_changed(cls) -> Change:
        """A key was added or retired."""
        return cls("keys")


# --- the wire format ----------------------------------------------------------------


def encode(change: Change, origin: str) -> str:
    """Compact JSON: ``{"o": origin, "k": kind code, ...}`` with short keys."""
    body: dict[str, Any] = {"o": origin, "k": _CODES[change.kind]}
    if change.user_id is not None:
        body["u"] = change.user_id
    if change.id_hashes:
        body["h"] = list(change.id_hashes)
    if change.reason is not None:
        body["why"] = change.reason
    if change.revocations:
        body["r"] = [[e.kind, e.value, e.created_at, e.expires_at] for e in change.revocations]
    return json.dumps(body, separators=(",", ":"))


def encode_chunks(change: Change, origin: str, *, max_bytes: int) -> list[str]:
    """:func:`encode`, split into messages of at most ``max_bytes`` (UTF-8) by
    halving the id or entry list (PostgreSQL NOTIFY payloads stay under 8000).

    Raises:
        ValueError: a single item does not fit.
    """
    text = encode(change, origin)
    if len(text.encode()) <= max_bytes:
        return [text]
    items = change.id_hashes or change.revocations
    if len(items) < 2:
        raise ValueError(f"a {change.kind} change does not fit in {max_bytes} bytes")
    half = len(items) // 2
    if change.id_hashes:
        parts = [
            dataclasses.replace(change, id_hashes=change.id_hashes[:half]),
            dataclasses.replace(change, id_hashes=change.id_hashes[half:]),
        ]
    else:
        parts = [
            dataclasses.replace(change, revocations=change.revocations[:half]),
            dataclasses.replace(change, revocations=change.revocations[half:]),
        ]
    return [text for part in parts for text in encode_chunks(part, origin, max_bytes=max_bytes)]


def _text(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT:
        raise ValueError("bad text field")
    return value


def _time(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("bad time field")
    return float(value)


def decode(text: str | bytes) -> tuple[str, Change]:
    """``(origin, change)`` from a message; strict, since anyone on the channel
    may have written it.

    Raises:
        ValueError: not a well-formed change.
    """
    body = json.loads(text)
    if not isinstance(body, dict):
        raise ValueError("not an object")
    origin = _text(body.get("o"))
    kind = _KIND_CODES.get(body.get("k"))  # type: ignore[arg-type]
    if kind is None:
        raise ValueError("unknown kind")
    user = body.get("u")
    reason = body.get("why")
    hashes = body.get("h", [])
    entries = body.get("r", [])
    if not isinstance(hashes, list) or not isinstance(entries, list):
        raise ValueError("bad list field")
    revocations: list[Revocation] = []
    for item in entries:
        if not isinstance(item, list) or len(item) != 4 or item[0] not in _REVOCATION_KINDS:
            raise ValueError("bad revocation entry")
        revocations.append(Revocation(item[0], _text(item[1]), _time(item[2]), _time(item[3])))
    change = Change(
        kind,
        user_id=None if user is None else _text(user),
        id_hashes=tuple(_text(value) for value in hashes),
        reason=None if reason is None else _text(reason),
        revocations=tuple(revocations),
    )
    if kind == "user" and change.user_id is None:
        raise ValueError("a user change names no user")
    return origin, change


# --- the channel ---------------------------------------------------------------------


class ChangeBus(Protocol):
    """A channel every instance publishes to and listens on (see :mod:`keyturn.fanout.buses`).

    Delivery is at most once; what a bus guarantees instead is that it *knows*
    when it may have missed something: :attr:`epoch` changes (or is None)
    whenever the channel was not verified alive without a break.
    """

    #: ``memory``, ``redis``, ``postgres`` or ``polling``.
    name: str
    #: The largest message :meth:`publish` accepts (UTF-8 bytes).
    max_message_bytes: int

    @property
    def epoch(self) -> int | None:
        """The current unbroken period of verified delivery, or None while the
        channel is not verified alive (heartbeat overdue, disconnected, not started)."""
        ...

    @property
    def alive_since(self) -> float | None:
        """POSIX time at which the current epoch began (for health reports)."""
        ...

    async def start(self, deliver: Callable[[str], None], connected: Callable[[], None]) -> None:
        """Start listening in the background: ``deliver(message)`` for every
        message (this instance's own included), ``connected()`` whenever a new
        epoch begins. Returns at once; connection failures are retried with backoff."""
        ...

    async def publish(self, message: str) -> None:
        """Send one message to every listener.

        Raises:
            StoreUnavailable: the channel cannot be reached (a bus wraps its
                driver's errors); the caller retries.
        """
        ...

    async def sweep(self, now: float) -> int:
        """Delete delivered messages older than the bus keeps them (a change
        table); returns how many. Buses without storage return 0."""
        ...

    async def close(self) -> None:
        """Stop listening and release connections."""
        ...
