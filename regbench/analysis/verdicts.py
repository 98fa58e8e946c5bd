"""Each variant against its baseline, as one :class:`Row` per summary: Δ, its confidence interval, and the verdict
read off that one interval.

**One error budget per table.** Every compared row of a family (a table, or one runtime's rows of it) gets a
two-sided interval at ``1 - alpha / k`` (k: the family's tested rows; Bonferroni). A row is ``better`` or
``worse`` when its interval excludes 0 (and says ``within_margin`` when it also lies inside ±margin),
``equivalent`` when it lies inside ±margin without excluding 0, else ``inconclusive``. A verdict can be wrong
only when its row's interval misses the true difference — a difference claimed in the wrong direction, or
equivalence claimed outside the margin, each needs the interval on the wrong side of the truth — so the chance
of any wrong verdict in the table is at most the chance that some interval misses, at most k · alpha / k =
alpha, whatever the rows' true differences, spreads and correlations (tests/analysis/test_error_budget.py
measures it). The interval shown is the one the verdict used.

**The design decides the test** (``analysis.test: auto``): runs of one seed share their initial weights, batch
order and split, so a row whose runs pair seed by seed with the baseline's (the same seeds, from one experiment
folder) is tested paired, valid whatever their correlation; rows pooled from other folders or on other seeds
are tested by Welch's t. ``paired`` pairs over the seeds the two share; ``welch`` never pairs.

The verdict words live here and nowhere else (:class:`Verdict`); tables, figures and reports show
``verdict.value``.
"""

from __future__ import annotations

import enum
import math
import statistics
from dataclasses import dataclass, field, replace

from regbench.analysis.stats import Difference, Plan, paired, plan, welch
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
from regbench.config.choices import ALPHA, PRIMARY_METRIC, TestKind


class Verdict(enum.Enum):
    BETTER = "better"
    WORSE = "worse"
    HIGHER = "higher"  # a decided difference of a metric without a better side
    LOWER = "lower"
    EQUIVALENT = "equivalent"  # within ±margin
    INCONCLUSIVE = "inconclusive"  # neither: more seeds would decide it

    @property
    def differs(self) -> bool:
        """A decided difference: better, worse, higher or lower."""
        return self in (Verdict.BETTER, Verdict.WORSE, Verdict.HIGHER, Verdict.LOWER)


@dataclass(frozen=True)
class Test:
    """The test of one row against its baseline and the verdict its interval gives."""

    kind: TestKind
    p_value: float | None  # the t-test's two-sided p, unadjusted (None: the difference never varies)
    p_adjusted: float | None  # p times the family's size (at most 1): below alpha exactly when the CI excludes 0
    ci_low: float  # the interval of Δ the verdict used, at ``confidence``
    ci_high: float
    confidence: float  # 1 - alpha / family
    effect_size: float | None  # Hedges' g
    equivalence_p: float | None  # two one-sided tests within ±margin, times 2 · family (at most 1)
    verdict: Verdict
    within_margin: bool  # the interval lies inside ±margin
    alpha: float  # the table's error budget (per look of rounds of seeds)
    family: int  # the tested rows sharing the budget
    plan: Plan | None = None  # for an inconclusive one: the seeds per variant that would decide it
    seeds: tuple[int, ...] = ()  # the seeds the test used
    per_look: bool = False  # alpha is the budget of each look of rounds of seeds (Pocock's level), not the study's


@dataclass(frozen=True)
class Row:
    """One summary of a comparison table and, when a baseline is named, how it compares with it."""

    summary: Summary
    metric: str = PRIMARY_METRIC  # what delta and the test are about
    delta: float | None = None  # mean of the metric minus the baseline's
    margin: float | None = None  # the equivalence margin, in the metric's own unit (accuracy: a fraction)
    kind: TestKind | None = None  # paired (runs of the same seeds) or welch
    test: Test | None = None  # None: no test (the baseline itself, n < 2, no baseline on its runtime)
    note: str = ""  # why there is no test ("baseline" for the baseline's own row)
    baseline: bool = False  # the baseline's own row
    exploratory: bool = False  # a metric other than the study's primary one: outside its error budget
    decided_at: tuple[int, ...] = field(default=())  # rounds of seeds: the seeds of the look that decided it

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
    seeds: tuple[int, ...] = ()


def judge(
    summaries: list[Summary],
    baseline: str | None,
    metric: str = PRIMARY_METRIC,
    margin: float | None = None,
    alpha: float = ALPHA,
    test: TestKind = TestKind.AUTO,
    primary: str = PRIMARY_METRIC,
    decided: dict[str, tuple[int, ...]] | None = None,
    plans: bool = True,
    per_look: bool = False,
) -> list[Row]:
    """Each summary's row: with ``baseline``, ``metric`` compared against it (Δ; the t-test chosen by ``test``;
    the interval at ``1 - alpha / k`` and the verdict it gives, :func:`decide`; ``margin`` in the metric's column
    unit, default :data:`MARGINS`). When the baseline was trained on several runtimes (backends), each row is
    compared with the baseline of its own runtime, and each runtime's rows are one family. ``decided``: rows
    decided at an earlier look of rounds of seeds (label -> that look's seeds), tested on those seeds again.
    ``plans``: plan the seeds of inconclusive rows (False: leave them out, for simulations of the verdicts).
    ``per_look``: ``alpha`` is each look's share of rounds of seeds (said so under the table).

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
    decided = decided or {}
    measured: dict[int, _Measured] = {}
    for s in summaries:
        base = matches[0] if len(matches) == 1 else by_runtime.get(runtime_key(s))
        if base is not None:
            measured[id(s)] = _measure(s, base, metric, TestKind(test), decided.get(s.label))
    families: dict[str, list[Summary]] = {}  # each runtime's comparisons against its own baseline
    for s in summaries:
        families.setdefault(runtime_key(s), []).append(s)
    tests: dict[int, Test] = {}
    for family in families.values():
        tested = [(s, measured[id(s)]) for s in family if id(s) in measured and measured[id(s)].diff is not None]
        for s, m in tested:
            test = decide(m.diff, metric, unit_margin, alpha, len(tested), m.seeds, plans)
            tests[id(s)] = replace(test, per_look=per_look) if per_look else test
    rows = []
    for s in summaries:
        m = measured.get(id(s))
        if m is None:
            rows.append(Row(s, metric, note=f"no {baseline} on {runtime_label(s.runtime, short=True)}"))
            continue
        frozen = decided.get(s.label, ())
        rows.append(
            Row(
                s,
                metric,
                m.delta,
                unit_margin,
                m.kind,
                tests.get(id(s)),
                m.note,
                m.note == "baseline",
                metric != primary,
                frozen,
            )
        )
    return rows


def decide(
    diff: Difference,
    metric: str,
    margin: float,
    alpha: float = ALPHA,
    family: int = 1,
    seeds: tuple[int, ...] = (),
    plans: bool = True,
) -> Test:
    """The verdict of one comparison in a family of ``family`` tested rows sharing the budget ``alpha``: read
    off the interval at ``1 - alpha / family`` (see the module's docstring), with the seeds that would decide an
    inconclusive one (:func:`regbench.analysis.stats.plan` at that level)."""
    level = alpha / family
    low, high = diff.interval(1 - level)
    within = -margin < low and high < margin
    side = BETTER.get(metric)
    if low > 0 or high < 0:
        up = diff.delta > 0
        if side is None:
            verdict = Verdict.HIGHER if up else Verdict.LOWER
        else:
            verdict = Verdict.BETTER if up == (side > 0) else Verdict.WORSE
    elif within:
        verdict = Verdict.EQUIVALENT
    else:
        verdict = Verdict.INCONCLUSIVE
    p, e = diff.p_value, diff.equivalence_p(margin)
    return Test(
        kind=diff.kind,
        p_value=p,
        p_adjusted=None if p is None else min(1.0, p * family),
        ci_low=low,
        ci_high=high,
        confidence=1 - level,
        effect_size=diff.effect_size,
        equivalence_p=None if e is None else min(1.0, 2 * family * e),
        verdict=verdict,
        within_margin=within,
        alpha=alpha,
        family=family,
        plan=plan(diff, margin, level) if plans and verdict is Verdict.INCONCLUSIVE else None,
        seeds=seeds,
    )


def _pairs(s: Summary, base: Summary, test: TestKind, mine: set[int], theirs: set[int]) -> bool:
    """Whether the row is tested paired: asked for (and two seeds shared), or by the design (auto): the same
    seeds as the baseline's (those tested), every run of both from one experiment folder."""
    if len(mine & theirs) < 2 or test is TestKind.WELCH:
        return False
    if test is TestKind.PAIRED:
        return True
    folders = {r.experiment_dir for r in (*s.runs, *base.runs)}
    return len(folders) == 1 and mine == theirs


def _measure(s: Summary, base: Summary, metric: str, test: TestKind, seeds: tuple[int, ...] | None) -> _Measured:
    """Δ of ``metric`` against ``base`` and its t-test, over ``seeds`` when given (a row decided at an earlier
    look), else over every run. No test for the baseline itself or n < 2."""
    keep = set(seeds) if seeds else None
    mine = {r.seed: v for r, v in zip(s.runs, metric_values(s, metric), strict=True) if math.isfinite(v)}
    theirs = {r.seed: v for r, v in zip(base.runs, metric_values(base, metric), strict=True) if math.isfinite(v)}
    if keep is not None:
        mine = {k: v for k, v in mine.items() if k in keep}
        theirs = {k: v for k, v in theirs.items() if k in keep}
    a, b = list(mine.values()), list(theirs.values())
    delta = statistics.fmean(a) - statistics.fmean(b) if a and b else None
    common = sorted(mine.keys() & theirs.keys())
    if s is base:
        return _Measured(delta, None, None, "baseline")
    if _pairs(s, base, test, set(mine), set(theirs)):
        diff = paired([mine[k] for k in common], [theirs[k] for k in common])
        used = tuple(common)
    elif len(a) >= 2 and len(b) >= 2:
        diff = welch(a, b)
        used = tuple(sorted(mine.keys() | theirs.keys()))
    else:
        return _Measured(delta, None, None, "n < 2")
    return _Measured(diff.delta, diff, diff.kind, "", used)
