"""Alternating rounds: the only way to compare on a machine whose speed drifts.

Cases run A B C, then B C A, then C A B, ...; a figure is the median over
rounds, and a ratio is the **median of the per-round ratios**, which survives the
drift of a shared VM far better than a ratio of medians.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from keyturn.bench.load import LoadResult
from keyturn.bench.stats import median

__all__ = ["Rounds", "alternate"]


@dataclass
class Rounds:
    """Results of :func:`alternate`: per case, one result per round."""

    results: dict[str, list[LoadResult]] = field(default_factory=dict)

    def median(self, case: str, attribute: str = "requests_per_s") -> float:
        """Median over rounds of ``attribute`` (``requests_per_s``, ``p50``, ``p99`` …)."""
        return median(getattr(result, attribute) for result in self.results[case])

    def ratios(self, case: str, base: str, attribute: str = "requests_per_s") -> list[float]:
        """The per-round ratios ``case / base`` of ``attribute``."""
        pairs = zip(self.results[case], self.results[base], strict=True)
        return [getattr(a, attribute) / getattr(b, attribute) for a, b in pairs]

    def ratio(self, case: str, base: str, attribute: str = "requests_per_s") -> float:
        """Median of the per-round ratios ``case / base`` of ``attribute``."""
        return median(self.ratios(case, base, attribute))

    def differences(self, case: str, base: str, attribute: str) -> list[float]:
        """The per-round differences ``case - base`` of ``attribute``."""
        pairs = zip(self.results[case], self.results[base], strict=True)
        return [getattr(a, attribute) - getattr(b, attribute) for a, b in pairs]

    def errors(self, case: str) -> int:
        """Error answers and socket errors over every round."""
        return sum(result.errors for result in self.results[case])

    def spread(self, case: str, attribute: str = "requests_per_s") -> tuple[float, float]:
        """Lowest and highest ``attribute`` over the rounds."""
        values = [getattr(result, attribute) for result in self.results[case]]
        return min(values), max(values)

    @property
    def tool(self) -> str:
        """The load generator that produced these results."""
        tools = {result.tool for results in self.results.values() for result in results}
        return ", ".join(sorted(tools))


def alternate(
    cases: Mapping[str, Callable[[], LoadResult]],
    rounds: int,
    *,
    progress: Callable[[str, LoadResult], None] | None = None,
) -> Rounds:
    """Run every case once per round, rotating the starting case, ``rounds`` times.

    ``progress(name, result)`` is called after each run.
    """
    names = list(cases)
    out = Rounds({name: [] for name in names})
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            result = cases[name]()
            out.results[name].append(result)
            if progress is not None:
                progress(name, result)
    return out
