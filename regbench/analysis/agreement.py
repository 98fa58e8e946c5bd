"""Does a verdict survive the framework? The verdict of one comparison, and whether two backends train a
variant alike. :func:`regbench.output.tables.backend_agreement` lays them out per variant."""

from __future__ import annotations

import math

from regbench.analysis.stats import welch
from regbench.analysis.summary import Summary, metric_values
from regbench.analysis.verdicts import Row


def verdict(row: Row) -> str:
    """A row's verdict (analysis.verdicts.Verdict), ``baseline``, or why it was not tested."""
    if row.baseline:
        return "baseline"
    return row.verdict.value if row.verdict is not None else (row.note or "untested")


def p_between(first: Summary, other: Summary, metric: str) -> float | str:
    """Welch's p for a variant's runs on one backend against its runs on another (small: the backends train it
    differently), or why there is none."""
    a = [v for v in metric_values(first, metric) if math.isfinite(v)]
    b = [v for v in metric_values(other, metric) if math.isfinite(v)]
    if len(a) < 2 or len(b) < 2:
        return "n < 2"
    p = welch(a, b).p_value
    return "no spread" if p is None else p
