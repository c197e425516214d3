"""Percentiles and medians, the way every keyturn benchmark computes them."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence

__all__ = ["PERCENTILES", "latency_percentiles", "median", "percentile"]

#: The latency percentiles every load result carries.
PERCENTILES = (50, 75, 90, 99)


def percentile(samples: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile of ``samples`` by nearest rank (nan when empty).

    Nearest rank never interpolates: with fewer than 100 samples the p99 is the
    largest one, which is the honest reading of a small sample.
    """
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def latency_percentiles(samples_ms: Sequence[float]) -> dict[int, float]:
    """p50, p75, p90 and p99 of latencies in milliseconds."""
    return {pct: percentile(samples_ms, pct) for pct in PERCENTILES}


def median(values: Iterable[float]) -> float:
    """The median, or nan for no values."""
    items = list(values)
    return statistics.median(items) if items else math.nan
