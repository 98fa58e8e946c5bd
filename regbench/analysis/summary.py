"""Finished runs pooled over seeds into one :class:`Summary` per variant: each metric's mean and std, the
baseline's choice, the keys a sweep varies. The comparison against a baseline is :mod:`regbench.analysis.verdicts`'.

Reads only the typed records of :mod:`regbench.store`, so it works on run folders from any machine and any day.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from regbench.analysis.stats import variance
from regbench.store.identity import comparable_config, config_hash
from regbench.store.reader import Run, Skipped
from regbench.store.records import RunRecord, Status

# key -> (header, how to read it from a run's record, format of one value, scale)
METRICS: dict[str, tuple[str, Callable[[RunRecord], Any], str, float]] = {
    "test_accuracy": ("test acc %", lambda r: r.test_accuracy, "{:.2f}", 100.0),
    "test_data_loss": ("test data loss", lambda r: r.test_data_loss, "{:.4f}", 1.0),
    "best_epoch": ("best epoch", lambda r: r.best_epoch, "{:.1f}", 1.0),
    "stopped_epoch": ("stopped epoch", lambda r: r.stopped_epoch, "{:.1f}", 1.0),
    "generalization_gap": ("gap pp", lambda r: r.generalization_gap, "{:.2f}", 100.0),
    "sparsity": ("|w|<1e-3 %", lambda r: r.weights.near_zero_share, "{:.1f}", 100.0),
    "weight_l2": ("weight L2", lambda r: r.weights.l2_norm, "{:.1f}", 1.0),
    # the largest L2 norm of one unit's incoming weights, over all layers: what max-norm bounds
    "max_unit_norm": ("max unit norm", lambda r: r.weights.max_unit_norm, "{:.2f}", 1.0),
    "train_time_s": ("time s", lambda r: r.train_time_s, "{:.1f}", 1.0),
}


# Which way is better, by metric (+1: higher); metrics not listed have no better side and higher counts as better.
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


RUN_COLUMNS = ["test_accuracy", "test_data_loss", "best_epoch", "generalization_gap", "train_time_s"]


ALL_COLUMNS = list(METRICS)


@dataclass(frozen=True)
class Stat:
    """Mean and std over a variant's seeds of one metric (NaN when no run has a finite value; std NaN for one)."""

    mean: float
    std: float
    n: int


@dataclass
class Summary:
    """All runs of one variant (same name, same resolved config apart from the seed, same runtime), pooled over
    seeds, with each metric's :class:`Stat`."""

    label: str
    variant: str
    experiments: list[str]
    config: dict[str, Any]
    runs: list[Run]
    runtime: dict[str, str] = field(default_factory=dict)  # what trained the runs: backend, versions, batch order
    stats: dict[str, Stat] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def statuses(self) -> list[str]:
        return sorted({(r.record.status or Status.FINISHED).value for r in self.runs})


def runtime_key(summary: Summary) -> str:
    return json.dumps(summary.runtime, sort_keys=True)


def baseline_candidates(summaries: list[Summary], name: str) -> list[Summary]:
    """The summaries a baseline name stands for: those with that label, else those of that variant name (one per
    runtime when the baseline was trained on several backends)."""
    return [s for s in summaries if s.label == name] or [s for s in summaries if s.variant == name]


def _default_name(summaries: list[Summary]) -> str:
    """The variant called ``baseline``, else the first one."""
    return "baseline" if any(s.variant == "baseline" for s in summaries) else summaries[0].variant


def default_baseline(summaries: list[Summary]) -> str | None:
    """The baseline that ``run`` and ``compare`` use when none is named: the variant called ``baseline``, else
    the first variant; None when there is nothing to compare, or the name stands for variants of different
    configs (then ``--baseline LABEL`` must say which)."""
    if len({s.variant for s in summaries}) < 2:
        return None
    name = _default_name(summaries)
    matches = baseline_candidates(summaries, name)
    return name if len({runtime_key(s) for s in matches}) == len(matches) else None


def baseline_summary(summaries: list[Summary], name: str | None) -> Summary | None:
    """The summary the report compares configs against: the named baseline's (its first runtime's), else the
    variant called ``baseline``, else the first."""
    if not summaries:
        return None
    if name is None:
        name = _default_name(summaries)
    return next(iter(baseline_candidates(summaries, name)), None)


def runtime_label(runtime: dict[str, str], short: bool = False) -> str:
    """``jax`` (short) or ``jax 0.10.2, keras 3.15.1`` (plus the batch order when it is not regbench's)."""
    if short:
        return runtime.get("backend", "?")
    text = f"{runtime.get('framework', runtime.get('backend', '?'))}, keras {runtime.get('keras', '?')}"
    order = runtime.get("batch_order", "?")
    return text if order.startswith("regbench") else f"{text}, {order}"


def summarize(runs: list[Run]) -> tuple[list[Summary], list[Skipped]]:
    """Pool runs by (variant name, config, runtime), with every metric's mean and std over seeds. A seed seen
    twice in one summary keeps the newest run only.

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
    out = []
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
        summary = Summary(label, variant, experiments, members[0].config, members, runtime=members[0].runtime)
        summary.stats.update({key: _stat(metric_values(summary, key)) for key in METRICS})
        out.append(summary)
    return out, dropped


def _stat(values: list[float]) -> Stat:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return Stat(math.nan, math.nan, 0)
    std = math.sqrt(variance(finite)) if len(finite) > 1 else math.nan
    return Stat(statistics.fmean(finite), std, len(finite))


def metric_values(summary: Summary, key: str) -> list[float]:
    """``key`` of each run (METRICS), NaN where a run does not record it."""
    read = METRICS[key][1]
    values = []
    for r in summary.runs:
        try:
            values.append(float(read(r.record)))
        except (AttributeError, TypeError, ValueError, OverflowError):
            values.append(math.nan)
    return values


def changed_keys(configs: list[dict[str, Any]]) -> list[str]:
    """Dotted config keys whose value differs between resolved configs (the parameter diff)."""
    flats = [comparable_config(c) for c in configs]
    keys = list(dict.fromkeys(k for f in flats for k in f))
    return [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1]


def reference_of(summary: Summary) -> dict[str, Any] | None:
    """A variant's published reference and how the measured mean compares: metric, value, source (from the
    config), measured (the same metric, in percent) and delta (measured - value, percentage points)."""
    ref = summary.config.get("reference")
    acc = summary.stats["test_accuracy"].mean
    if not ref or not math.isfinite(acc):
        return None
    measured = (1.0 - acc) * 100 if ref["metric"] == "test_error" else acc * 100
    return {**ref, "measured": measured, "delta": measured - ref["value"]}


def sweep_axes(summaries: list[Summary]) -> dict[str, list]:
    """The config keys a sweep varies, with their values in order, when the variants form a full grid over
    them (every combination once); {} otherwise (hand-written variants that differ in unrelated ways). Derived
    from the configs, so it holds for runs pooled from several folders as for one sweep's."""
    keys = changed_keys([s.config for s in summaries])
    if not keys or len(summaries) < 2:
        return {}
    flats = [comparable_config(s.config) for s in summaries]
    axes: dict[str, list] = {}
    for k in keys:
        axes[k] = []
        for f in flats:
            if f.get(k) not in axes[k]:
                axes[k].append(f.get(k))
    combos = {tuple(json.dumps(f.get(k), sort_keys=True) for k in keys) for f in flats}
    if len(combos) != len(summaries) or len(summaries) != math.prod(len(v) for v in axes.values()):
        return {}
    for values in axes.values():
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            values.sort()
    return axes
