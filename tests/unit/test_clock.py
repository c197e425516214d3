"""The clock helpers every expiry and every ``*_at`` field relies on."""

from __future__ import annotations

import pytest

from keyturn.clock import FrozenClock, isoformat


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1_800_000_000.9, "2027-01-15T08:00:00Z"),
        (951_782_400, "2000-02-29T00:00:00Z"),
    ],
)
def test_isoformat_is_utc_whole_seconds_with_z(timestamp: float, expected: str) -> None:
    """Times in API bodies are ISO 8601 UTC with a Z, fractions dropped (not rounded)."""
    assert isoformat(timestamp) == expected


def test_frozen_clock_moves_only_when_told() -> None:
    """Tests move time forward explicitly instead of sleeping."""
    clock = FrozenClock(100.0)
    assert clock.now() == 100.0
    clock.advance(2.5)
    assert clock.now() == 102.5
