"""The one error the benchmark raises on purpose."""

from __future__ import annotations

__all__ = ["BenchError"]


class BenchError(RuntimeError):
    """A benchmark step could not run: a server did not start, a request that
    sets up a measurement failed, a tool is missing. The message is one line a
    user can act on."""
