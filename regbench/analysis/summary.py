"""Aggregate finished runs into table rows: mean and std over seeds, differences against a baseline.

Reads only what :mod:`regbench.store` wrote, so it works on run folders from any machine and any day.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from regbench.analysis.stats import PAIRED, WELCH, Difference, holm, paired, seeds_needed, welch
from regbench.store.identity import comparable_config, config_hash
from regbench.store.reader import Run, Skipped

# key -> (header, how to read it from a run, format of one value, scale)
METRICS: dict[str, tuple[str, Any, str, float]] = {
    "test_accuracy": ("test acc %", lambda m: m["test_accuracy"], "{:.2f}", 100.0),
    "test_data_loss": ("test data loss", lambda m: m["test_data_loss"], "{:.4f}", 1.0),
    "best_epoch": ("best epoch", lambda m: m["best_epoch"], "{:.1f}", 1.0),
    "stopped_epoch": ("stopped epoch", lambda m: m["stopped_epoch"], "{:.1f}", 1.0),
    "generalization_gap": ("gap pp", lambda m: m["generalization_gap"], "{:.2f}", 100.0),
    "sparsity": ("|w|<1e-3 %", lambda m: m["weights"]["near_zero_share"], "{:.1f}", 100.0),
    "weight_l2": ("weight L2", lambda m: m["weights"]["l2_norm"], "{:.1f}", 1.0),
    # the largest L2 norm of one unit's incoming weights, over all layers: what max-norm bounds
    "max_unit_norm": (
        "max unit norm",
        lambda m: max(layer["max_unit_norm"] for layer in m["weights"]["layers"].values()),
        "{:.2f}",
        1.0,
    ),
    "train_time_s": ("time s", lambda m: m["train_time_s"], "{:.1f}", 1.0),
}


# Which way is better, by metric (+1: higher); metrics not listed have no better side and "better" means higher.
BETTER: dict[str, int] = {"test_accuracy": 1, "test_data_loss": -1, "generalization_gap": -1, "train_time_s": -1}

# The default equivalence margin of each metric, in the unit its column shows (pp, %, epochs, s): a difference
# smaller than this is not worth acting on in a study of these models. analysis.margin or --margin replace it.
MARGINS: dict[str, float] = {
    "test_accuracy": 0.2,
    "test_data_loss": 0.005,
    "best_epoch": 1.0,
    "stopped_epoch": 1.0,
    "generalization_gap": 0.2,
    "sparsity": 1.0,
    "weight_l2": 1.0,
    "max_unit_norm": 0.1,
    "train_time_s": 1.0,
}

ALPHA = 0.05  # each verdict's chance of being wrong, Holm-adjusted over the table's comparisons

VERDICTS = ("better", "worse", "equivalent", "inconclusive")


RUN_COLUMNS = ["test_accuracy", "test_data_loss", "best_epoch", "generalization_gap", "train_time_s"]


ALL_COLUMNS = list(METRICS)


@dataclass
class Group:
    """All runs of one variant: same name and same resolved config apart from the seed."""

    label: str
    variant: str
    experiments: list[str]
    config: dict[str, Any]
    runs: list[Run]
    runtime: dict[str, str] = field(default_factory=dict)  # what trained the runs: backend, versions, batch order
    stats: dict[str, dict[str, float]] = field(default_factory=dict)
    delta: float | None = None
    p_value: float | None = None  # the t-test against the baseline (test_kind), unadjusted
    p_value_holm: float | None = None  # Holm-adjusted over every comparison in the table
    ci_low: float | None = None  # 95 % confidence interval of delta, of the test used
    ci_high: float | None = None
    effect_size: float | None = None  # Hedges' g
    test_note: str = ""
    tested: str = "test_accuracy"  # the metric that delta and p_value are about
    test_kind: str | None = None  # paired (runs of the same seeds) or welch
    margin: float | None = None  # the equivalence margin, in the metric's own unit (accuracy: a fraction)
    equivalence_p: float | None = None  # two one-sided tests within ±margin, Holm-adjusted over the table
    verdict: str | None = None  # better, worse, equivalent or inconclusive (VERDICTS); None: not compared
    seeds_needed: int | None = None  # for an inconclusive one: seeds per variant that would decide it
    level: float | None = None  # the level the verdict was decided at (alpha, lower when seeds came in rounds)

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def statuses(self) -> list[str]:
        return sorted({r.metrics.get("status", "finished") for r in self.runs})


def _runtime_key(g: Group) -> str:
    return json.dumps(g.runtime, sort_keys=True)


def baseline_candidates(groups: list[Group], name: str) -> list[Group]:
    """The groups a baseline name stands for: those with that label, else those of that variant name (one per
    runtime when the baseline was trained on several backends)."""
    return [g for g in groups if g.label == name] or [g for g in groups if g.variant == name]


def _default_name(groups: list[Group]) -> str:
    """The variant called ``baseline``, else the first one."""
    return "baseline" if any(g.variant == "baseline" for g in groups) else groups[0].variant


def default_baseline(groups: list[Group]) -> str | None:
    """The baseline that ``run`` and ``compare`` use when none is named: the variant called ``baseline``, else
    the first variant; None when there is nothing to compare, or the name stands for variants of different
    configs (then ``--baseline LABEL`` must say which)."""
    if len({g.variant for g in groups}) < 2:
        return None
    name = _default_name(groups)
    matches = baseline_candidates(groups, name)
    return name if len({_runtime_key(g) for g in matches}) == len(matches) else None


def baseline_group(groups: list[Group], name: str | None) -> Group | None:
    """The group the report compares configs against: the named baseline's (its first runtime's), else the
    variant called ``baseline``, else the first."""
    if not groups:
        return None
    if name is None:
        name = _default_name(groups)
    return next(iter(baseline_candidates(groups, name)), None)


def runtime_label(runtime: dict[str, str], short: bool = False) -> str:
    """``jax`` (short) or ``jax 0.10.2, keras 3.15.1`` (plus the batch order when it is not regbench's)."""
    if short:
        return runtime.get("backend", "?")
    text = f"{runtime.get('framework', runtime.get('backend', '?'))}, keras {runtime.get('keras', '?')}"
    order = runtime.get("batch_order", "?")
    return text if order.startswith("regbench") else f"{text}, {order}"


def group_runs(runs: list[Run]) -> tuple[list[Group], list[Skipped]]:
    """Group runs by (variant name, config, runtime). A seed seen twice in one group keeps the newest run only.

    Runs of one config trained by different backends, framework versions or batch orders are never pooled:
    they get rows of their own, labelled ``variant @ jax`` (or with the versions when the backend is the same).
    Same-named variants with different configs are labelled with their experiments.
    """
    buckets: dict[tuple[str, str, str], dict[int, Run]] = {}
    dropped: list[Skipped] = []
    for run in sorted(runs, key=lambda r: (r.experiment_dir.name, r.order, r.variant, r.seed)):
        key = (run.variant, config_hash(run.config), json.dumps(run.runtime, sort_keys=True))
        seeds = buckets.setdefault(key, {})
        if run.seed in seeds:
            reason = f"seed {run.seed} again in newer {run.path}; using that"
            dropped.append(Skipped(seeds[run.seed].path, reason, superseded=True))
        seeds[run.seed] = run
    groups = []
    for (variant, _, _), seeds in buckets.items():
        members = [seeds[s] for s in sorted(seeds)]
        experiments = sorted({r.experiment_dir.name for r in members})
        siblings = [k for k in buckets if k[0] == variant]
        parts = []
        if len({k[2] for k in siblings}) > 1:
            backends = {json.loads(k[2]).get("backend") for k in siblings}
            parts.append(runtime_label(members[0].runtime, short=len(backends) == len(siblings)))
        if len({k[1] for k in siblings}) > 1:
            parts.append(", ".join(experiments))
        label = f"{variant} @ {'; '.join(parts)}" if parts else variant
        groups.append(Group(label, variant, experiments, members[0].config, members, runtime=members[0].runtime))
    return groups, dropped


def _stats(values: list[float]) -> dict[str, float]:
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {
        "mean": statistics.fmean(finite),
        "std": statistics.stdev(finite) if len(finite) > 1 else math.nan,
        "n": len(finite),
    }


def metric_values(group: Group, key: str) -> list[float]:
    read = METRICS[key][1]
    values = []
    for r in group.runs:
        try:
            values.append(float(read(r.metrics)))
        except (KeyError, TypeError, ValueError):
            values.append(math.nan)
    return values


def summarize(
    runs: list[Run],
    baseline: str | None = None,
    metric: str = "test_accuracy",
    margin: float | None = None,
    alpha: float = ALPHA,
    test: str = WELCH,
) -> tuple[list[Group], list[Skipped]]:
    """Group runs and compute mean/std of every metric; with ``baseline``, compare ``metric`` (default test
    accuracy) against it, row by row: Δ, the t-test's 95 % CI and p-value (``test``: Welch's, or paired over
    the seeds the two share when they share at least two), Hedges' g, two one-sided tests of equivalence within
    ``margin`` (in the metric's column unit; default :data:`MARGINS`), both Holm-adjusted over the table, and
    the verdict
    (:func:`decide`). When the baseline was trained on several runtimes (backends), each row is compared with
    the baseline of its own runtime.

    Raises:
        KeyError: when ``baseline`` names no variant among the runs, or two of one runtime.
    """
    groups, dropped = group_runs(runs)
    for g in groups:
        g.tested = metric
        for key in METRICS:
            g.stats[key] = _stats(metric_values(g, key))
    if baseline is not None:
        matches = baseline_candidates(groups, baseline)
        by_runtime = {_runtime_key(g): g for g in matches}
        if not matches or len(by_runtime) != len(matches):
            raise KeyError(baseline)
        unit_margin = (MARGINS.get(metric, 0.0) if margin is None else margin) / METRICS[metric][3]
        tests: dict[int, Difference] = {}
        for g in groups:
            base = matches[0] if len(matches) == 1 else by_runtime.get(_runtime_key(g))
            if base is None:
                g.test_note = f"no {baseline} on {runtime_label(g.runtime, short=True)}"
                continue
            g.margin = unit_margin
            diff = _test_against(g, base, metric, test)
            if diff is not None:
                tests[id(g)] = diff
        families: dict[str, list[Group]] = {}  # each runtime's comparisons against its own baseline
        for g in groups:
            families.setdefault(_runtime_key(g), []).append(g)
        for family in families.values():
            for g, adjusted in zip(family, holm([g.p_value for g in family]), strict=True):
                g.p_value_holm = adjusted
            equivalence = [tests[id(g)].equivalence_p(unit_margin) if id(g) in tests else None for g in family]
            for g, adjusted in zip(family, holm(equivalence), strict=True):
                g.equivalence_p = adjusted
            compared = [g for g in family if id(g) in tests]
            for g in compared:
                decide(g, tests[id(g)], alpha, len(compared))
    return groups, dropped


def decide(g: Group, diff: Difference, alpha: float = ALPHA, comparisons: int = 1) -> None:
    """The verdict of one comparison, from its Holm-adjusted tests at level ``alpha``: ``equivalent`` when the
    two one-sided tests put Δ within ±margin (even if a difference is also found: it is too small to matter),
    else ``better`` or ``worse`` when the t-test finds a difference (by the metric's better side, :data:`BETTER`),
    else ``inconclusive``, with the seeds per variant that would decide it at the observed spread (planned at
    alpha / ``comparisons``, what Holm asks of the hardest one in a table of that many)."""
    g.level = alpha
    if g.equivalence_p is not None and g.equivalence_p < alpha:
        g.verdict = "equivalent"
    elif g.p_value_holm is not None and g.p_value_holm < alpha and g.delta is not None:
        g.verdict = "better" if g.delta * BETTER.get(g.tested, 1) > 0 else "worse"
    else:
        g.verdict = "inconclusive"
        g.seeds_needed = seeds_needed(diff, g.margin or 0.0, alpha / comparisons)


def _test_against(g: Group, base: Group, metric: str, test: str = WELCH) -> Difference | None:
    """Δ of ``metric`` against ``base`` and its t-test: with ``test`` paired, over the seeds both have (at least
    two); else Welch's over all runs. Returns it, or None when there is no test (the baseline itself, n < 2)."""
    mine = {r.seed: v for r, v in zip(g.runs, metric_values(g, metric), strict=True) if math.isfinite(v)}
    theirs = {r.seed: v for r, v in zip(base.runs, metric_values(base, metric), strict=True) if math.isfinite(v)}
    a, b = list(mine.values()), list(theirs.values())
    g.delta = statistics.fmean(a) - statistics.fmean(b) if a and b else None
    common = sorted(mine.keys() & theirs.keys())
    if g is base:
        g.test_note = "baseline"
        return None
    if test == PAIRED and len(common) >= 2:
        diff = paired([mine[s] for s in common], [theirs[s] for s in common])
    elif len(a) >= 2 and len(b) >= 2:
        diff = welch(a, b)
    else:
        g.test_note = "n < 2"
        return None
    g.delta, g.test_kind = diff.delta, diff.kind
    g.p_value, g.ci_low, g.ci_high, g.effect_size = diff.p_value, diff.ci_low, diff.ci_high, diff.effect_size
    g.test_note = "" if diff.p_value is not None else "no variance"  # undefined when the difference never varies
    return diff if diff.p_value is not None else None


def changed_keys(configs: list[dict[str, Any]]) -> list[str]:
    """Dotted config keys whose value differs between resolved configs (the parameter diff)."""
    flats = [comparable_config(c) for c in configs]
    keys = list(dict.fromkeys(k for f in flats for k in f))
    return [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1]


def reference_of(g: Group) -> dict[str, Any] | None:
    """A variant's published reference and how the measured mean compares: metric, value, source (from the
    config), measured (the same metric, in percent) and delta (measured - value, percentage points)."""
    ref = g.config.get("reference")
    acc = g.stats.get("test_accuracy", {}).get("mean", math.nan)
    if not ref or not math.isfinite(acc):
        return None
    measured = (1.0 - acc) * 100 if ref["metric"] == "test_error" else acc * 100
    return {**ref, "measured": measured, "delta": measured - ref["value"]}


def sweep_axes(groups: list[Group]) -> dict[str, list]:
    """The config keys a sweep varies, with their values in order, when the variants form a full grid over
    them (every combination once); {} otherwise (hand-written variants that differ in unrelated ways). Derived
    from the configs, so it holds for runs pooled from several folders as for one sweep's."""
    keys = changed_keys([g.config for g in groups])
    if not keys or len(groups) < 2:
        return {}
    flats = [comparable_config(g.config) for g in groups]
    axes: dict[str, list] = {}
    for k in keys:
        axes[k] = []
        for f in flats:
            if f.get(k) not in axes[k]:
                axes[k].append(f.get(k))
    combos = {tuple(json.dumps(f.get(k), sort_keys=True) for k in keys) for f in flats}
    if len(combos) != len(groups) or len(groups) != math.prod(len(v) for v in axes.values()):
        return {}
    for values in axes.values():
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            values.sort()
    return axes
