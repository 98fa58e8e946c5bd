"""Each variant against its baseline: Δ, the t-test (Welch's, or paired by seed), two one-sided tests of
equivalence, both Holm-adjusted over the table, and the verdict — as one :class:`Row` per summary, made once.

The verdict words live here and nowhere else (:class:`Verdict`); tables, figures and reports show
``verdict.value``.
"""

from __future__ import annotations

import enum
import math
import statistics
from dataclasses import dataclass

from regbench.analysis.stats import Difference, holm, paired, seeds_needed, welch
from regbench.analysis.summary import (
    BETTER,
    MARGINS,
    METRICS,
    Summary,
    baseline_candidates,
    metric_values,
    runtime_key,
    runtime_label,
)
from regbench.config.choices import ALPHA, TEST, TestKind


class Verdict(enum.Enum):
    BETTER = "better"
    WORSE = "worse"
    EQUIVALENT = "equivalent"  # within ±margin by two one-sided tests
    INCONCLUSIVE = "inconclusive"  # neither: more seeds would decide it

    @property
    def differs(self) -> bool:
        """A decided difference: better or worse."""
        return self in (Verdict.BETTER, Verdict.WORSE)


@dataclass(frozen=True)
class Test:
    """The tests of one row against its baseline, and the verdict they give at ``level``."""

    p_value: float  # the t-test's two-sided p, unadjusted
    p_holm: float | None  # Holm-adjusted over the table's comparisons (its runtime's)
    ci_low: float  # 95 % confidence interval of Δ, of the test used
    ci_high: float
    effect_size: float | None  # Hedges' g
    equivalence_p: float | None  # two one-sided tests within ±margin, Holm-adjusted over the table
    verdict: Verdict
    level: float  # the level the verdict was decided at (alpha, lower when seeds came in rounds)
    seeds_needed: int | None = None  # for an inconclusive one: seeds per variant that would decide it


@dataclass(frozen=True)
class Row:
    """One summary of a comparison table and, when a baseline is named, how it compares with it."""

    summary: Summary
    metric: str = "test_accuracy"  # what delta and the test are about
    delta: float | None = None  # mean of the metric minus the baseline's
    margin: float | None = None  # the equivalence margin, in the metric's own unit (accuracy: a fraction)
    kind: TestKind | None = None  # paired (runs of the same seeds) or welch
    test: Test | None = None  # None: no test (the baseline itself, n < 2, no variance, no baseline on its runtime)
    note: str = ""  # why there is no test ("baseline" for the baseline's own row)
    baseline: bool = False  # the baseline's own row

    @property
    def verdict(self) -> Verdict | None:
        return None if self.test is None else self.test.verdict

    @property
    def compared(self) -> bool:
        """Whether the row was set against a baseline (its own runtime's had one), with or without a test."""
        return self.margin is not None or bool(self.note)


@dataclass(frozen=True)
class _Measured:
    delta: float | None
    diff: Difference | None  # the t-test, when there is one
    kind: TestKind | None
    note: str


def judge(
    summaries: list[Summary],
    baseline: str | None,
    metric: str = "test_accuracy",
    margin: float | None = None,
    alpha: float = ALPHA,
    test: TestKind = TEST,
) -> list[Row]:
    """Each summary's row: with ``baseline``, ``metric`` compared against it (Δ, the t-test's 95 % CI and p:
    ``test`` paired over the seeds the two share when they share at least two, else Welch's; Hedges' g; two
    one-sided tests of equivalence within ``margin``, in the metric's column unit, default :data:`MARGINS`; both
    Holm-adjusted over the table; the verdict at ``alpha``, :func:`decide`). When the baseline was trained on
    several runtimes (backends), each row is compared with the baseline of its own runtime, and each runtime's
    rows are one family.

    Raises:
        KeyError: when ``baseline`` names no variant among the summaries, or two of one runtime.
    """
    if baseline is None:
        return [Row(s, metric) for s in summaries]
    matches = baseline_candidates(summaries, baseline)
    by_runtime = {runtime_key(s): s for s in matches}
    if not matches or len(by_runtime) != len(matches):
        raise KeyError(baseline)
    unit_margin = (MARGINS.get(metric, 0.0) if margin is None else margin) / METRICS[metric][3]
    measured: dict[int, _Measured] = {}
    for s in summaries:
        base = matches[0] if len(matches) == 1 else by_runtime.get(runtime_key(s))
        if base is not None:
            measured[id(s)] = _measure(s, base, metric, TestKind(test))
    families: dict[str, list[Summary]] = {}  # each runtime's comparisons against its own baseline
    for s in summaries:
        families.setdefault(runtime_key(s), []).append(s)
    tests: dict[int, Test] = {}
    for family in families.values():
        diffs = [measured[id(s)].diff if id(s) in measured else None for s in family]
        p_holm = holm([d.p_value if d is not None else None for d in diffs])
        equivalent = holm([d.equivalence_p(unit_margin) if d is not None else None for d in diffs])
        compared = sum(d is not None for d in diffs)
        for s, d, p, e in zip(family, diffs, p_holm, equivalent, strict=True):
            if d is not None:
                tests[id(s)] = decide(d, metric, p, e, unit_margin, alpha, compared)
    rows = []
    for s in summaries:
        m = measured.get(id(s))
        if m is None:
            rows.append(Row(s, metric, note=f"no {baseline} on {runtime_label(s.runtime, short=True)}"))
            continue
        rows.append(Row(s, metric, m.delta, unit_margin, m.kind, tests.get(id(s)), m.note, m.note == "baseline"))
    return rows


def decide(
    diff: Difference,
    metric: str,
    p_holm: float | None,
    equivalence_p: float | None,
    margin: float,
    alpha: float = ALPHA,
    comparisons: int = 1,
) -> Test:
    """The verdict of one comparison, from its Holm-adjusted tests at level ``alpha``: ``equivalent`` when the
    two one-sided tests put Δ within ±margin (even if a difference is also found: it is too small to matter),
    else ``better`` or ``worse`` when the t-test finds a difference (by the metric's better side, :data:`BETTER`),
    else ``inconclusive``, with the seeds per variant that would decide it at the observed spread (planned at
    alpha / ``comparisons``, what Holm asks of the hardest one in a table of that many)."""
    needed = None
    if equivalence_p is not None and equivalence_p < alpha:
        verdict = Verdict.EQUIVALENT
    elif p_holm is not None and p_holm < alpha:
        verdict = Verdict.BETTER if diff.delta * BETTER.get(metric, 1) > 0 else Verdict.WORSE
    else:
        verdict = Verdict.INCONCLUSIVE
        needed = seeds_needed(diff, margin or 0.0, alpha / comparisons)
    assert diff.p_value is not None and diff.ci_low is not None and diff.ci_high is not None
    p, low, high = diff.p_value, diff.ci_low, diff.ci_high
    return Test(p, p_holm, low, high, diff.effect_size, equivalence_p, verdict, alpha, needed)


def _measure(s: Summary, base: Summary, metric: str, test: TestKind) -> _Measured:
    """Δ of ``metric`` against ``base`` and its t-test: with ``test`` paired, over the seeds both have (at least
    two); else Welch's over all runs. No test for the baseline itself, n < 2, or a difference that never varies."""
    mine = {r.seed: v for r, v in zip(s.runs, metric_values(s, metric), strict=True) if math.isfinite(v)}
    theirs = {r.seed: v for r, v in zip(base.runs, metric_values(base, metric), strict=True) if math.isfinite(v)}
    a, b = list(mine.values()), list(theirs.values())
    delta = statistics.fmean(a) - statistics.fmean(b) if a and b else None
    common = sorted(mine.keys() & theirs.keys())
    if s is base:
        return _Measured(delta, None, None, "baseline")
    if test is TestKind.PAIRED and len(common) >= 2:
        diff = paired([mine[k] for k in common], [theirs[k] for k in common])
    elif len(a) >= 2 and len(b) >= 2:
        diff = welch(a, b)
    else:
        return _Measured(delta, None, None, "n < 2")
    if diff.p_value is None:  # undefined when the difference never varies
        return _Measured(diff.delta, None, diff.kind, "no variance")
    return _Measured(diff.delta, diff, diff.kind, "")
