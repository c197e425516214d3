"""The verdicts of every benchmark script, gathered for ``make bench``'s summary.

A script that checks targets calls :func:`record_verdicts` once with its verdicts
(objects with ``claim``, ``measured``, ``target``, ``passed`` and ``note``): when
``BENCH_VERDICTS`` names a file, they are appended to it as JSON lines, and
``benchmarks/bench_all.py`` prints them all, ratios first, before each script's
own tables. Run alone, a script just prints its tables as before.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

ENV = "BENCH_VERDICTS"


def record_verdicts(source: str, verdicts: Iterable[Any]) -> None:
    """Append ``verdicts`` of script ``source`` to ``$BENCH_VERDICTS`` (if set)."""
    path = os.environ.get(ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        for verdict in verdicts:
            row = {
                "source": source,
                "claim": verdict.claim,
                "measured": verdict.measured,
                "target": verdict.target,
                "passed": verdict.passed,
                "note": verdict.note,
            }
            out.write(json.dumps(row) + "\n")
