"""Write a comparison to a folder: summary.md/.csv/.json, the figures, and a self-contained report.html."""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from regbench.errors import RegbenchError
from regbench.identity import comparable_config
from regbench.report import (
    METRICS,
    Group,
    changed_keys,
    group_runs,
    markdown,
    records,
    summarize,
    table,
)
from regbench.runs import Skipped, atomic_write, csv_text, find_runs, json_safe

FIGURES = {
    "loss.png": "Data loss (cross-entropy without penalties) per epoch: mean over seeds, ±std band",
    "accuracy.png": "Accuracy per epoch: mean over seeds, ±std band",
    "accuracy_bars.png": "Test accuracy and generalization gap, mean ± std over seeds",
    "weights.png": "Weight magnitudes of the Dense kernels, per variant",
}


def baseline_group(groups: list[Group], name: str | None) -> Group | None:
    if name is not None:
        return next((g for g in groups if name in (g.label, g.variant)), None)
    return next((g for g in groups if g.variant == "baseline"), groups[0] if groups else None)


def default_baseline(groups: list[Group]) -> str | None:
    """The baseline that ``run`` and ``compare`` use when none is named: the variant called ``baseline``, else
    the first variant; None when there is nothing to compare, or the name stands for variants of different
    configs (then ``--baseline LABEL`` must say which)."""
    if len({g.variant for g in groups}) < 2:
        return None
    name = "baseline" if any(g.variant == "baseline" for g in groups) else groups[0].variant
    matches = [g for g in groups if g.variant == name]
    return name if len({json.dumps(g.runtime, sort_keys=True) for g in matches}) == len(matches) else None


def config_diff(group: Group, base: Group) -> dict[str, tuple[Any, Any]]:
    """Keys whose value differs from the baseline's: key -> (baseline value, this value)."""
    a, b = comparable_config(base.config), comparable_config(group.config)
    return {k: (a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)}


def json_text(groups: list[Group], diff: list[str], skipped: list[Skipped]) -> str:
    return (
        json.dumps(
            json_safe(
                {
                    "variants": records(groups, diff),
                    "skipped": [{"path": str(s.path), "reason": s.reason} for s in skipped],
                }
            ),
            indent=2,
        )
        + "\n"
    )


def write_all(
    groups: list[Group],
    folder: Path,
    columns: list[str],
    *,
    with_test: bool = False,
    baseline: str | None = None,
    diff: list[str] | None = None,
    skipped: list[Skipped] | None = None,
    title: str = "regbench comparison",
) -> list[Path]:
    """Write every summary file, figure and report.html for ``groups`` into ``folder``."""
    from regbench import plots

    folder.mkdir(parents=True, exist_ok=True)
    diff = diff or []
    header, rows = table(groups, columns, with_test=with_test, diff=diff)
    atomic_write(folder / "summary.md", markdown(header, rows))
    atomic_write(folder / "summary.csv", csv_text(records(groups, diff)))
    atomic_write(folder / "summary.json", json_text(groups, diff, skipped or []))
    base = baseline_group(groups, baseline) if baseline else None
    jobs = [
        (plots.loss_plot, (groups, folder / "loss.png", base)),
        (plots.accuracy_plot, (groups, folder / "accuracy.png", base)),
        (plots.accuracy_bars, (groups, folder / "accuracy_bars.png")),
        (plots.weight_histogram, (groups, folder / "weights.png")),
    ]
    figures = dict(FIGURES)
    if "data.train_subset" in changed_keys(groups):
        jobs.append((plots.learning_curve, (groups, folder / "learning_curve.png")))
        figures["learning_curve.png"] = "Test accuracy against training-set size"
    axes = plots.sweep_axes(groups) if len(groups) > 2 else {}  # two variants: the config diff says it all
    if len(axes) == 1:
        jobs.append((plots.sweep_plot, (groups, next(iter(axes)), folder / "sweep.png", base)))
        figures["sweep.png"] = f"Test accuracy and generalization gap against {next(iter(axes))}, mean ± std"
    elif len(axes) >= 2:
        jobs.append((plots.heatmap, (groups, axes, folder / "heatmap.png")))
        figures["heatmap.png"] = "The sweep grid: mean ± std per cell; * where the Holm-adjusted p < 0.05"
    plots.draw(jobs, parallel=len(groups) > plots.SMALL_MULTIPLES_ABOVE)  # small multiples: worth a helper
    page = report_html(groups, folder, header, rows, baseline, skipped or [], title, figures, axes)
    atomic_write(folder / "report.html", page)
    return [folder / n for n in ("summary.md", "summary.csv", "summary.json", *figures, "report.html")]


def report_html(
    groups: list[Group],
    folder: Path,
    header: list[str],
    rows: list[list[str]],
    baseline: str | None,
    skipped: list[Skipped],
    title: str,
    captions: dict[str, str] | None = None,
    sweep: dict[str, list] | None = None,
) -> str:
    """One page, no server, no network: the table, the figures as embedded PNGs, and what differs between the
    variants (for a sweep, one table with a column per swept key; otherwise each variant's config diff)."""
    esc = html.escape
    base = baseline_group(groups, baseline)
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    figures = []
    for name, caption in (captions or FIGURES).items():
        data = base64.b64encode((folder / name).read_bytes()).decode()
        figures.append(
            f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>"
        )
    diffs = []
    if sweep:
        from regbench.identity import comparable_config

        cells = "".join(f"<th>{esc(k)}</th>" for k in sweep)
        lines = "".join(
            f"<tr><td>{esc(g.label)}</td>"
            + "".join(f"<td>{esc(json.dumps(comparable_config(g.config).get(k)))}</td>" for k in sweep)
            + "</tr>"
            for g in groups
        )
        diffs.append(f"<table class=diff><tr><th>variant</th>{cells}</tr>{lines}</table>")
    for g in [] if sweep else groups:
        if base is None or g is base:
            continue
        changed = config_diff(g, base)
        items = (
            "".join(
                f"<tr><td><code>{esc(k)}</code></td><td>{esc(json.dumps(a))}</td><td>{esc(json.dumps(b))}</td></tr>"
                for k, (a, b) in changed.items()
            )
            or '<tr><td colspan="3">same config</td></tr>'
        )
        diffs.append(
            f"<h3>{esc(g.label)}</h3><table class=diff><tr><th>key</th><th>{esc(base.label)}</th>"
            f"<th>{esc(g.label)}</th></tr>{items}</table>"
        )
    skipped_html = ""
    if skipped:
        skipped_html = (
            "<h2>Skipped</h2><ul>"
            + "".join(f"<li><code>{esc(str(s.path))}</code>: {esc(s.reason)}</li>" for s in skipped)
            + "</ul>"
        )
    experiments = sorted({e for g in groups for e in g.experiments})
    tested = groups[0].tested.replace("_", " ") if groups else ""
    against = (
        f" Δ, its 95 % confidence interval, Hedges' g and p (Welch's t-test, Holm-adjusted over the table; on "
        f"{tested}) are against {esc(base.label)}."
        if baseline and base
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 12px; max-width: 100%; }}
th, td {{ border: 1px solid #ccc; padding: 3px 5px; text-align: right; }}
td {{ white-space: nowrap; }}
th {{ white-space: normal; vertical-align: bottom; }}
td:first-child {{ white-space: normal; word-break: break-word; }}
th:first-child, td:first-child {{ text-align: left; }}
th {{ background: #f3f3f3; }}
table.diff td, table.diff th {{ text-align: left; }}
figure {{ display: inline-block; margin: 0.5em; max-width: 48%; vertical-align: top; }}
figure img {{ max-width: 100%; border: 1px solid #ddd; }}
figcaption {{ font-size: 13px; color: #555; }}
.note {{ color: #555; font-size: 13px; }}
</style></head><body>
<h1>{esc(title)}</h1>
<p class=note>Experiments: {esc(", ".join(experiments))}. Written {datetime.now():%Y-%m-%d %H:%M}.
Test accuracy and data loss come from the test set, evaluated once per run after model selection on a
held-out validation split. Values are mean ± std over seeds; gap = train accuracy − test accuracy
(both in inference mode), in percentage points.{against}</p>
<table><tr>{head}</tr>{body}</table>
{"".join(figures)}
<h2>{"Swept keys per variant" if sweep else "Config differences against " + (esc(base.label) if base else "—")}</h2>
{"".join(diffs) or "<p>Only one variant.</p>"}
{skipped_html}
</body></html>
"""


SORT_KEYS = ["variant", "n", *METRICS, "delta", "p_value"]


@dataclass
class Comparison:
    groups: list[Group]
    skipped: list[Skipped]
    diff: list[str]
    with_test: bool
    baseline: str | None = None


def compare(
    paths: list[Path],
    baseline: str | None = None,
    sort: str | None = None,
    reverse: bool = False,
    only_changed: bool = False,
    metric: str = "test_accuracy",
) -> Comparison:
    """Read runs under ``paths``, group them by variant and compute the statistics.

    Without ``baseline`` it is picked as :func:`default_baseline` says, the same way for ``run`` and
    ``compare``, so the same runs give the same table.

    Raises:
        RegbenchError: (exit 2) when no finished run is found, or ``baseline``/``sort`` name nothing known.
    """
    runs, skipped = find_runs(paths)
    if not runs:
        reasons = [f"  - {s.path}: {s.reason}" for s in skipped]
        raise RegbenchError(
            [
                "no finished run folders found in " + ", ".join(map(str, paths)),
                *reasons,
                "Expected experiment folders written by `regbench run` (e.g. outputs/*).",
            ],
            exit_code=2,
        )
    if metric not in METRICS:
        raise RegbenchError(f"--test {metric}: unknown metric; expected one of: {', '.join(METRICS)}", exit_code=2)
    if baseline is None:
        baseline = default_baseline(group_runs(runs)[0])
    try:
        groups, dropped = summarize(runs, baseline, metric)
    except KeyError:
        labels = [g.label for g in group_runs(runs)[0]]
        hits = [lbl for lbl in labels if lbl.split(" @ ")[0] == baseline]
        why = f"matches {len(hits)} variants; name one by its full label" if hits else "no such variant"
        raise RegbenchError(
            f"--baseline {baseline}: {why}; expected one of: {'; '.join(hits or labels)}", exit_code=2
        ) from None
    if sort is not None:
        if sort not in SORT_KEYS:
            raise RegbenchError(f"--sort {sort}: unknown column; expected one of: {', '.join(SORT_KEYS)}", exit_code=2)

        def key(g: Group) -> tuple:
            if sort == "variant":
                value: Any = g.label
            elif sort == "n":
                value = g.n
            elif sort == "delta":
                value = g.delta
            elif sort == "p_value":
                value = g.p_value
            else:
                value = g.stats[sort]["mean"]
            missing = value is None or (isinstance(value, float) and math.isnan(value))
            return (missing, value if not missing else 0)

        groups = sorted(groups, key=key, reverse=reverse)
        if reverse:  # keep rows without a value at the bottom either way
            groups = [g for g in groups if not key(g)[0]] + [g for g in groups if key(g)[0]]
    diff = changed_keys(groups) if only_changed else []
    return Comparison(groups, skipped + dropped, diff, with_test=baseline is not None, baseline=baseline)
