"""Aggregate finished runs into table rows: mean and std over seeds, differences against a baseline.

Reads only what :mod:`regbench.runs` wrote, so it works on run folders from any machine and any day.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from regbench.identity import comparable_config, config_hash
from regbench.runs import Run, Skipped
from regbench.stats import holm, welch

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
    p_value: float | None = None  # Welch's t-test against the baseline, unadjusted
    p_value_holm: float | None = None  # Holm-adjusted over every comparison in the table
    ci_low: float | None = None  # 95 % confidence interval of delta
    ci_high: float | None = None
    effect_size: float | None = None  # Hedges' g
    test_note: str = ""
    tested: str = "test_accuracy"  # the metric that delta and p_value are about

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def statuses(self) -> list[str]:
        return sorted({r.metrics.get("status", "finished") for r in self.runs})


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


def runtimes_note(groups: list[Group]) -> str | None:
    """A sentence for under a table whose rows come from more than one runtime, else None."""
    labels = list(dict.fromkeys(runtime_label(g.runtime) for g in groups))
    if len(labels) < 2:
        return None
    return (
        "Runs of different backends, versions or batch orders are kept apart, never pooled: " + "; ".join(labels)
    )


def _stats(values: list[float]) -> dict[str, float]:
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    return {
        "mean": statistics.fmean(finite),
        "std": statistics.stdev(finite) if len(finite) > 1 else math.nan,
        "n": len(finite),
    }


def _values(group: Group, key: str) -> list[float]:
    read = METRICS[key][1]
    values = []
    for r in group.runs:
        try:
            values.append(float(read(r.metrics)))
        except (KeyError, TypeError, ValueError):
            values.append(math.nan)
    return values


def summarize(
    runs: list[Run], baseline: str | None = None, metric: str = "test_accuracy"
) -> tuple[list[Group], list[Skipped]]:
    """Group runs and compute mean/std of every metric; with ``baseline``, the difference in ``metric``
    (default test accuracy) against it: Welch's t-test p-value, its Holm adjustment over the table, the 95 %
    confidence interval of the difference and Hedges' g (regbench.stats). When the baseline was trained on
    several runtimes (backends), each row is tested against the baseline of its own runtime.

    Raises:
        KeyError: when ``baseline`` names no variant among the runs, or two of one runtime.
    """
    groups, dropped = group_runs(runs)
    for g in groups:
        g.tested = metric
        for key in METRICS:
            g.stats[key] = _stats(_values(g, key))
    if baseline is not None:
        matches = [g for g in groups if g.label == baseline] or [g for g in groups if g.variant == baseline]
        by_runtime = {json.dumps(g.runtime, sort_keys=True): g for g in matches}
        if not matches or len(by_runtime) != len(matches):
            raise KeyError(baseline)
        for g in groups:
            base = matches[0] if len(matches) == 1 else by_runtime.get(json.dumps(g.runtime, sort_keys=True))
            if base is None:
                g.test_note = f"no {baseline} on {runtime_label(g.runtime, short=True)}"
                continue
            _test_against(g, base, metric)
        families: dict[str, list[Group]] = {}  # each runtime's comparisons against its own baseline
        for g in groups:
            families.setdefault(json.dumps(g.runtime, sort_keys=True), []).append(g)
        for family in families.values():
            for g, adjusted in zip(family, holm([g.p_value for g in family]), strict=True):
                g.p_value_holm = adjusted
    return groups, dropped


def _test_against(g: Group, base: Group, metric: str) -> None:
    """Δ of ``metric`` against ``base``, its 95 % CI, Hedges' g and Welch's t-test p-value."""
    a = [v for v in _values(g, metric) if math.isfinite(v)]
    b = [v for v in _values(base, metric) if math.isfinite(v)]
    g.delta = statistics.fmean(a) - statistics.fmean(b) if a and b else None
    if g is base:
        g.test_note = "baseline"
    elif len(a) < 2 or len(b) < 2:
        g.test_note = "n < 2"
    else:
        w = welch(a, b)
        g.p_value, g.ci_low, g.ci_high, g.effect_size = w.p_value, w.ci_low, w.ci_high, w.effect_size
        g.test_note = "" if w.p_value is not None else "no variance"  # undefined when neither sample varies


def changed_keys(groups: list[Group]) -> list[str]:
    """Dotted config keys whose value differs between the groups (the parameter diff)."""
    return changed_keys_of([g.config for g in groups])


def changed_keys_of(configs: list[dict[str, Any]]) -> list[str]:
    """Dotted config keys whose value differs between resolved configs."""
    flats = [comparable_config(c) for c in configs]
    keys = list(dict.fromkeys(k for f in flats for k in f))
    return [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1]


def fmt_stat(key: str, s: dict[str, float]) -> str:
    _, _, spec, scale = METRICS[key]
    if not s or s["n"] == 0:
        return "—"
    mean = s["mean"] * scale
    text = str(int(mean)) if s["n"] == 1 and float(mean).is_integer() else spec.format(mean)
    if s["n"] > 1 and math.isfinite(s["std"]):
        text += " ± " + spec.format(s["std"] * scale)
    return text


def fmt_pvalue(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def fmt_p(g: Group, adjusted: bool = True) -> str:
    """The p-value cell: Holm-adjusted (the table's) or raw; a note where there is no test."""
    p = g.p_value_holm if adjusted else g.p_value
    return (g.test_note or "—") if p is None else fmt_pvalue(p)


def reference_of(g: Group) -> dict[str, Any] | None:
    """A variant's published reference and how the measured mean compares: metric, value, source (from the
    config), measured (the same metric, in percent) and delta (measured - value, percentage points)."""
    ref = g.config.get("reference")
    acc = g.stats.get("test_accuracy", {}).get("mean", math.nan)
    if not ref or not math.isfinite(acc):
        return None
    measured = (1.0 - acc) * 100 if ref["metric"] == "test_error" else acc * 100
    return {**ref, "measured": measured, "delta": measured - ref["value"]}


def table(groups: list[Group], columns: list[str], with_test: bool = False, diff: list[str] | None = None):
    """Header and text cells of the comparison table (shared by the terminal, Markdown and CSV views).

    When a variant carries a published reference, two columns show it and the measured mean's difference."""
    header = ["variant", "n"] + [k for k in diff or []] + [METRICS[c][0] for c in columns]
    tested = groups[0].tested if groups else "test_accuracy"
    name, _, spec, scale = METRICS[tested]
    refs = [reference_of(g) for g in groups]
    if any(refs):
        header += ["reference %", "measured − ref pp"]
    if with_test:
        header += ["Δ acc pp" if tested == "test_accuracy" else f"Δ {name}", "95 % CI", "g", "p (Welch, Holm)"]
    rows = []
    for g, ref in zip(groups, refs, strict=True):
        flat = comparable_config(g.config)
        cells = [g.label + (" (diverged)" if "diverged" in g.statuses else ""), str(g.n)]
        cells += [json.dumps(flat.get(k)) if not isinstance(flat.get(k), str) else flat[k] for k in diff or []]
        cells += [fmt_stat(c, g.stats[c]) for c in columns]
        if any(refs):
            what = {"test_error": "error", "test_accuracy": "acc"}
            cells += [f"{ref['value']:.2f} {what[ref['metric']]}", f"{ref['delta']:+.2f}"] if ref else ["—", "—"]
        if with_test:
            signed = spec.replace("{:", "{:+")
            ci = "—" if g.ci_low is None else f"[{signed.format(g.ci_low * scale)}, {signed.format(g.ci_high * scale)}]"
            g_cell = "—" if g.effect_size is None else f"{g.effect_size:+.2f}"
            cells += ["—" if g.delta is None else signed.format(g.delta * scale), ci, g_cell, fmt_p(g)]
        rows.append(cells)
    return header, rows


def records(groups: list[Group], diff: list[str] | None = None) -> list[dict[str, Any]]:
    """Machine-readable rows: numbers unformatted (accuracy as a fraction), for CSV and JSON."""
    out = []
    for g in groups:
        flat = comparable_config(g.config)
        row: dict[str, Any] = {
            "variant": g.label,
            "name": g.variant,
            "experiments": ";".join(g.experiments),
            "n": g.n,
            "seeds": ";".join(str(r.seed) for r in g.runs),
            "status": ";".join(g.statuses),
            "backend": g.runtime.get("backend"),
            "runtime": runtime_label(g.runtime),
        }
        for k in diff or []:
            row[k] = flat.get(k)
        for key in METRICS:
            row[f"{key}_mean"] = g.stats[key]["mean"]
            row[f"{key}_std"] = g.stats[key]["std"]
        ref = reference_of(g)
        if ref:
            row.update({f"reference_{k}": v for k, v in ref.items()})
        if g.test_note or g.p_value is not None:
            row[f"delta_{g.tested}"] = g.delta
            row["delta_ci_low"], row["delta_ci_high"] = g.ci_low, g.ci_high
            row["effect_size"] = g.effect_size
            row["p_value"] = g.p_value
            row["p_value_holm"] = g.p_value_holm
            row["test_note"] = g.test_note
        out.append(row)
    return out


def markdown(header: list[str], rows: list[list[str]]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def backend_agreement(groups: list[Group], alpha: float = 0.05) -> tuple[list[str], list[list[str]]]:
    """Does a conclusion survive the framework? Per variant: the tested metric, Δ and p against the baseline
    on each backend, whether the verdicts agree, and the p-value of the metric between backends.

    ``groups`` come from :func:`summarize` with a baseline over runs of two or more runtimes. A verdict is the
    sign of Δ and whether the Holm-adjusted p (over that backend's comparisons) is < ``alpha``; verdicts agree
    when every backend gives the same one. The last column
    is Welch's t-test of the variant's own runs on the first runtime against each other runtime: small values
    mean the backends train this variant differently.
    """
    runtimes = list(dict.fromkeys(runtime_label(g.runtime) for g in groups))
    shorts = {runtime_label(g.runtime): runtime_label(g.runtime, short=True) for g in groups}
    if len(set(shorts.values())) < len(shorts):
        shorts = {r: r for r in runtimes}
    tested = groups[0].tested if groups else "test_accuracy"
    name, _, spec, scale = METRICS[tested]
    header = ["variant"]
    for r in runtimes:
        header += [f"{name} ({shorts[r]})", f"Δ ({shorts[r]})", f"p Holm ({shorts[r]})"]
    header += ["verdicts agree", "p between backends"]
    rows = []
    by_variant: dict[str, dict[str, Group]] = {}
    for g in groups:
        by_variant.setdefault(g.variant, {})[runtime_label(g.runtime)] = g
    for variant, per in by_variant.items():
        cells, verdicts = [variant], set()
        for r in runtimes:
            g = per.get(r)
            if g is None:
                cells += ["—", "—", "—"]
                continue
            delta = "—" if g.delta is None else spec.replace("{:", "{:+").format(g.delta * scale)
            cells += [fmt_stat(tested, g.stats[tested]), delta, fmt_p(g)]
            if g.test_note == "baseline":
                verdicts.add("baseline")
            elif g.p_value_holm is not None and g.delta is not None:
                verdicts.add(("better" if g.delta > 0 else "worse") if g.p_value_holm < alpha else "no difference")
            else:
                verdicts.add(g.test_note or "untested")
        present = [per[r] for r in runtimes if r in per]
        if len(present) < 2:
            cells.append(f"only on {shorts[next(r for r in runtimes if r in per)]}")
        elif verdicts == {"baseline"}:
            cells.append("baseline")
        else:
            cells.append(f"yes: {verdicts.pop()}" if len(verdicts) == 1 else "NO: " + " vs ".join(sorted(verdicts)))
        ps = []
        first = [v for v in _values(present[0], tested) if math.isfinite(v)]
        for other in present[1:]:
            second = [v for v in _values(other, tested) if math.isfinite(v)]
            if len(first) < 2 or len(second) < 2:
                ps.append("n < 2")
                continue
            p = welch(first, second).p_value
            ps.append("no variance" if p is None else fmt_pvalue(p))
        cells.append(", ".join(ps) or "—")
        rows.append(cells)
    return header, rows
