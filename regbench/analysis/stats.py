"""Statistics of a comparison: the difference of means with its t interval (Welch's, or paired by seed), two
one-sided tests of equivalence, Hedges' g, the chance that a number of seeds decides a comparison (its power),
the seeds a plan needs, and the per-look level of rounds of seeds (a group-sequential boundary).

A verdict is read off one confidence interval (analysis.verdicts): it is wrong only when that interval misses the
true difference, which is what makes the error budget of a table provable (and simulated: tests/analysis).

The t distribution comes from ``scipy.special`` (``stdtr``, ``stdtrit``, ``chdtri``), which imports much faster
than ``scipy.stats`` (compare answers in well under a second); tests check every number against
``scipy.stats.ttest_ind(equal_var=False)``, ``ttest_rel`` and their ``confidence_interval``.
"""

from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass

from regbench.config.choices import TestKind

POWER = 0.8  # the chance of a decision a seeds-needed plan aims at
MOST_SEEDS = 1000  # a plan beyond this says so instead of a number
SPREAD_BOUND = 0.7  # a plan takes the spread at this one-sided upper confidence bound
DELTA_RANGE = 0.5  # and any difference in this confidence interval (tests/analysis/test_plan.py)


@dataclass(frozen=True)
class Difference:
    """The difference of means ``mean(a) - mean(b)`` and what is known about it."""

    delta: float
    se: float  # standard error of delta (0 when the difference never varies)
    df: float  # degrees of freedom of its t distribution
    effect_size: float | None  # Hedges' g: delta / pooled std of the two samples, bias-corrected
    kind: TestKind = TestKind.WELCH  # welch: independent samples; paired: per-seed differences
    spreads: tuple[float, ...] = ()  # per-seed std: (of a, of b) for Welch, (of the differences,) paired
    sizes: tuple[int, ...] = ()  # seeds behind each spread: (na, nb) for Welch, (pairs,) paired

    @property
    def n(self) -> int:
        """Seeds per variant behind it (the smaller sample for Welch, the pairs for paired)."""
        return min(self.sizes)

    def interval(self, confidence: float) -> tuple[float, float]:
        """The two-sided ``confidence`` interval of delta ([delta, delta] when it never varies)."""
        from scipy import special

        if self.se <= 0:
            return self.delta, self.delta
        half = float(special.stdtrit(self.df, 0.5 + confidence / 2)) * self.se
        return self.delta - half, self.delta + half

    @property
    def p_value(self) -> float | None:
        """The two-sided t-test of delta = 0; None when the difference never varies (no t-test)."""
        from scipy import special

        if self.se <= 0:
            return None
        return float(2 * special.stdtr(self.df, -abs(self.delta) / self.se))

    def equivalence_p(self, margin: float) -> float | None:
        """Two one-sided tests that delta lies within (-margin, +margin): the larger of the two p-values
        (small: equivalent). None when the difference never varies (then its interval says it)."""
        from scipy import special

        if self.se <= 0 or margin <= 0:
            return None
        lower = special.stdtr(self.df, -(self.delta + margin) / self.se)  # H0: delta <= -margin
        upper = special.stdtr(self.df, (self.delta - margin) / self.se)  # H0: delta >= +margin
        return float(max(lower, upper))


def variance(values: list[float]) -> float:
    """The sample variance (n - 1), two-pass with exact sums: as accurate as ``statistics.variance`` for these
    sizes, without its exact rational arithmetic (the tables' simulations judge thousands of tables)."""
    mean = statistics.fmean(values)
    return math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)


def _hedges_g(a: list[float], b: list[float], delta: float) -> float | None:
    na, nb = len(a), len(b)
    pooled = math.sqrt(((na - 1) * variance(a) + (nb - 1) * variance(b)) / (na + nb - 2))
    return delta / pooled * (1 - 3 / (4 * (na + nb) - 9)) if pooled > 0 else None


def welch(a: list[float], b: list[float]) -> Difference:
    """Welch's unequal-variances t-test of ``a`` against ``b`` (each at least 2 values)."""
    na, nb = len(a), len(b)
    va, vb = variance(a), variance(b)
    delta = statistics.fmean(a) - statistics.fmean(b)
    se2 = va / na + vb / nb
    df = se2**2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1)) if se2 > 0 else float(na + nb - 2)
    g = _hedges_g(a, b, delta) if se2 > 0 else None
    return Difference(delta, math.sqrt(se2), df, g, TestKind.WELCH, (math.sqrt(va), math.sqrt(vb)), (na, nb))


def paired(a: list[float], b: list[float]) -> Difference:
    """The paired t-test of ``a`` against ``b``, pair by pair (at least 2 pairs): the runs of one seed in two
    variants. Hedges' g is that of the two samples, as for :func:`welch`, so the column means one thing."""
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    sd = math.sqrt(variance(diffs))
    delta = statistics.fmean(diffs)
    g = _hedges_g(a, b, delta) if sd > 0 else None
    return Difference(delta, sd / math.sqrt(n), n - 1, g, TestKind.PAIRED, (sd,), (n,))


def _se_df(kind: TestKind, spreads: tuple[float, ...], n: int) -> tuple[float, float]:
    """The standard error and degrees of freedom of a difference at ``n`` seeds per variant."""
    if kind is TestKind.PAIRED:
        return spreads[0] / math.sqrt(n), n - 1.0
    va, vb = (s * s for s in spreads)
    if va + vb <= 0:
        return 0.0, 2.0 * (n - 1)
    return math.sqrt((va + vb) / n), (va + vb) ** 2 * (n - 1) / (va * va + vb * vb)


QUANTILES = 128  # of the chi-square distribution of a spread, over which power is averaged


def power(delta: float, kind: TestKind, spreads: tuple[float, ...], n: int, level: float, margin: float) -> float:
    """The chance that ``n`` seeds per variant decide a comparison whose true difference is ``delta`` and whose
    per-seed spreads are ``spreads`` (exactly: the verdict's interval at ``1 - level`` excludes 0, or lies
    within ±margin), averaged over the spread the n seeds will show (its chi-square distribution)."""
    import numpy as np
    from scipy import special

    se, df = _se_df(kind, spreads, n)
    if se <= 0:
        return 1.0
    q = float(special.stdtrit(df, 1 - level / 2))
    chi = special.chdtri(df, 1 - (np.arange(QUANTILES) + 0.5) / QUANTILES)  # quantiles of chi-square(df)
    half = q * se * np.sqrt(chi / df)  # the interval's half-width, for each spread the seeds may show
    low, high = np.maximum(margin - half, 0.0), half  # undecided: low <= |estimate| <= high (when low < high)

    def cdf(x):
        return special.ndtr((x - delta) / se)

    stuck = np.where(low < high, cdf(high) - cdf(low) + cdf(-low) - cdf(-high), 0.0)
    return float(1.0 - stuck.mean())


@dataclass(frozen=True)
class Plan:
    """Seeds per variant that decide a comparison with :data:`POWER`: ``seeds`` plans for the spread and the
    difference being as unfavourable as the seeds so far plausibly allow (the spread at its upper
    :data:`SPREAD_BOUND` bound, any difference in their :data:`DELTA_RANGE` interval), which a simulation of
    three-seed first looks shows to decide at least 80 % of comparisons (tests/analysis/test_plan.py); ``likely``
    is what the spread and difference seen would need. None: beyond :data:`MOST_SEEDS`."""

    seeds: int | None
    likely: int | None


def _fewest(decides, start: int) -> int | None:
    """The fewest n >= start (up to MOST_SEEDS) for which ``decides(n)``; power grows with n."""
    if decides(start):
        return start
    low, high = start, start
    while not decides(high):
        low, high = high, high * 2
        if low >= MOST_SEEDS:
            return None
        high = min(high, MOST_SEEDS)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if decides(middle) else (middle, high)
    return high


def plan(diff: Difference, margin: float, level: float) -> Plan:
    """How many seeds per variant would decide ``diff``'s comparison at ``level`` with :data:`POWER`, taking the
    uncertainty of the seeds so far into account: :class:`Plan`."""
    import numpy as np
    from scipy import special

    start = diff.n + 1
    if diff.se <= 0:
        return Plan(start, start)
    df_spread = max(1.0, float(diff.n - 1))
    upper = math.sqrt(df_spread / float(special.chdtri(df_spread, SPREAD_BOUND)))  # upper bound of a spread's scale
    pessimistic = tuple(s * upper for s in diff.spreads)
    half = float(special.stdtrit(diff.df, 0.5 + DELTA_RANGE / 2)) * diff.se  # interval of the difference
    deltas = np.unique(np.abs(np.linspace(diff.delta - half, diff.delta + half, 17)))

    def robust(n: int) -> bool:
        return min(power(float(d), diff.kind, pessimistic, n, level, margin) for d in deltas) >= POWER

    def likely(n: int) -> bool:
        return power(diff.delta, diff.kind, diff.spreads, n, level, margin) >= POWER

    return Plan(_fewest(robust, start), _fewest(likely, start))


def _simpson(low: float, high: float, points: int):
    """Nodes and weights of Simpson's rule on [low, high] (``points`` odd)."""
    import numpy as np

    x = np.linspace(low, high, points)
    w = np.ones(points)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return x, w * (x[1] - x[0]) / 3


@functools.lru_cache(maxsize=64)
def sequential_level(seeds: tuple[int, ...], alpha: float, points: int = 201) -> float:
    """The nominal two-sided level of each look at ``seeds`` (per variant, growing) that keeps the chance of any
    look's interval missing the true difference at ``alpha``: Pocock's constant boundary for looks at unequal
    information (the sum of n_j independent increments, normalised, at each look), by recursive numerical
    integration over each look's continuation region (Armitage, McPherson and Rowe 1969). One look: ``alpha``."""
    import numpy as np
    from scipy import special

    if len(seeds) <= 1:
        return alpha
    n = [float(s) for s in seeds]

    def crossing(c: float) -> float:
        """The chance that the sum of n_j standard normal increments leaves ±c sqrt(n_j) at some look."""
        x, w = _simpson(-c * math.sqrt(n[0]), c * math.sqrt(n[0]), points)
        density = np.exp(-(x**2) / (2 * n[0])) / math.sqrt(2 * math.pi * n[0])
        for previous, current in zip(n[:-1], n[1:], strict=True):
            y, v = _simpson(-c * math.sqrt(current), c * math.sqrt(current), points)
            step = current - previous
            kernel = np.exp(-((y[:, None] - x[None, :]) ** 2) / (2 * step)) / math.sqrt(2 * math.pi * step)
            density, x, w = kernel @ (w * density), y, v
        return 1.0 - float(w @ density)

    low, high = float(special.ndtri(1 - alpha / 2)), float(special.ndtri(1 - alpha / (2 * len(seeds))))
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if crossing(middle) > alpha else (low, middle)
    return float(2 * special.ndtr(-high))
