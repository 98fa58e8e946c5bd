"""Statistics of a comparison: the difference of means with its t interval and test (Welch's, or paired by
seed), two one-sided tests of equivalence, Hedges' g, Holm's adjustment, and the seeds a comparison needs.

The t distribution comes from ``scipy.special`` (``stdtr``, ``stdtrit``), which imports much faster than
``scipy.stats`` (compare answers in well under a second); tests check every number against
``scipy.stats.ttest_ind(equal_var=False)``, ``ttest_rel`` and their ``confidence_interval``.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from regbench.config.choices import ALPHA, TestKind


@dataclass
class Difference:
    """The difference of means ``mean(a) - mean(b)`` and what is known about it."""

    delta: float
    p_value: float | None  # two-sided; None when the difference does not vary
    ci_low: float | None  # 95 % confidence interval of delta, of the test used
    ci_high: float | None
    effect_size: float | None  # Hedges' g: delta / pooled std of the two samples, bias-corrected
    kind: TestKind = TestKind.WELCH  # welch: independent samples; paired: per-seed differences
    se: float | None = None  # standard error of delta
    df: float | None = None  # degrees of freedom of its t distribution
    spreads: tuple[float, ...] = ()  # per-seed std: (of a, of b) for Welch, (of the differences,) paired
    n: int = 0  # seeds per variant behind it (the smaller sample for Welch, the pairs for paired)

    def equivalence_p(self, margin: float) -> float | None:
        """Two one-sided tests that delta lies within (-margin, +margin): the larger of the two p-values
        (small: equivalent). None when the difference does not vary."""
        from scipy import special

        if not self.se or self.df is None or margin <= 0:
            return None
        lower = special.stdtr(self.df, -(self.delta + margin) / self.se)  # H0: delta <= -margin
        upper = special.stdtr(self.df, (self.delta - margin) / self.se)  # H0: delta >= +margin
        return float(max(lower, upper))


def _hedges_g(a: list[float], b: list[float], delta: float) -> float | None:
    na, nb = len(a), len(b)
    pooled = math.sqrt(((na - 1) * statistics.variance(a) + (nb - 1) * statistics.variance(b)) / (na + nb - 2))
    return delta / pooled * (1 - 3 / (4 * (na + nb) - 9)) if pooled > 0 else None


def _t_result(delta, se, df, kind, spreads, g, confidence, n) -> Difference:
    from scipy import special

    if se <= 0:
        return Difference(delta, None, None, None, g, kind, None, None, spreads, n)
    p = float(2 * special.stdtr(df, -abs(delta) / se))
    half = float(special.stdtrit(df, 0.5 + confidence / 2)) * se
    return Difference(delta, p, delta - half, delta + half, g, kind, se, df, spreads, n)


def welch(a: list[float], b: list[float], confidence: float = 0.95) -> Difference:
    """Welch's unequal-variances t-test of ``a`` against ``b`` (each at least 2 values)."""
    na, nb = len(a), len(b)
    va, vb = statistics.variance(a), statistics.variance(b)
    delta = statistics.fmean(a) - statistics.fmean(b)
    se2 = va / na + vb / nb
    df = se2**2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1)) if se2 > 0 else math.nan
    g = _hedges_g(a, b, delta) if se2 > 0 else None
    spreads = (math.sqrt(va), math.sqrt(vb))
    return _t_result(delta, math.sqrt(se2), df, TestKind.WELCH, spreads, g, confidence, min(na, nb))


def paired(a: list[float], b: list[float], confidence: float = 0.95) -> Difference:
    """The paired t-test of ``a`` against ``b``, pair by pair (at least 2 pairs): the runs of one seed in two
    variants. Hedges' g is that of the two samples, as for :func:`welch`, so the column means one thing."""
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    sd = statistics.stdev(diffs)
    delta = statistics.fmean(diffs)
    g = _hedges_g(a, b, delta) if sd > 0 else None
    return _t_result(delta, sd / math.sqrt(n), n - 1, TestKind.PAIRED, (sd,), g, confidence, n)


def seeds_needed(diff: Difference, margin: float, alpha: float = ALPHA, most: int = 1000) -> int | None:
    """How many seeds per variant would decide a comparison if the spread stayed as observed and the true
    difference were the one observed: the fewest n, more than it has, at which the test at ``alpha`` (pass the
    level one comparison gets in its table, e.g. alpha / comparisons) would find a difference (|Δ| beyond the
    two-sided t bound) or equivalence (|Δ| plus the one-sided bound within the margin). None beyond ``most``
    (a difference of about zero with a margin smaller than the noise), or when nothing varies."""
    from scipy import special

    if not diff.spreads or not all(s > 0 for s in diff.spreads):
        return None
    for n in range(max(2, diff.n + 1), most + 1):
        if diff.kind is TestKind.PAIRED:
            se, df = diff.spreads[0] / math.sqrt(n), n - 1
        else:
            va, vb = (s * s for s in diff.spreads)
            se, df = math.sqrt((va + vb) / n), (va + vb) ** 2 * (n - 1) / (va * va + vb * vb)
        if abs(diff.delta) > special.stdtrit(df, 1 - alpha / 2) * se:
            return n
        if abs(diff.delta) + special.stdtrit(df, 1 - alpha) * se < margin:
            return n
    return None


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values (None entries are not part of the family)."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(present)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted
