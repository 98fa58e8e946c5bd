"""report.html: one self-contained page with the table, the figures and what differs between variants."""

from __future__ import annotations

import base64
import html
import json
from datetime import datetime
from pathlib import Path

from regbench.analysis.compare import config_diff
from regbench.analysis.summary import Summary, baseline_summary
from regbench.analysis.verdicts import Row
from regbench.output.tables import tests_note
from regbench.store.files import FIGURE_BYTES, read_file
from regbench.store.identity import comparable_config
from regbench.store.layout import SEARCH_HISTORY, SEARCH_IMPORTANCE, SEARCH_PARALLEL
from regbench.store.reader import Skipped

FIGURES = {
    "loss.png": "Data loss (cross-entropy without penalties) per epoch: mean over seeds, ±std band",
    "accuracy.png": "Accuracy per epoch: mean over seeds, ±std band",
    "accuracy_bars.png": "Test accuracy and generalization gap, mean ± std over seeds",
    "weights.png": "Weight magnitudes of the Dense kernels, per variant",
}

SEARCH_FIGURES = {  # drawn by the search itself (study.search.draw), shown when the folder has them
    SEARCH_HISTORY: "The search: objective of each trial (validation, mean over its seeds) and the best so far",
    SEARCH_PARALLEL: "The search: each trial's values of the searched keys, coloured by its objective",
    SEARCH_IMPORTANCE: "The search: how much each searched key mattered to the objective (Optuna's fANOVA)",
}


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 12px; max-width: 100%; }
th, td { border: 1px solid #ccc; padding: 3px 5px; text-align: right; }
td { white-space: nowrap; }
th { white-space: normal; vertical-align: bottom; }
td:first-child { white-space: normal; word-break: break-word; min-width: 7em; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
table.diff td, table.diff th { text-align: left; }
figure { display: inline-block; margin: 0.5em; max-width: 48%; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 13px; color: #555; }
.note { color: #555; font-size: 13px; }
"""
esc = html.escape


def report_html(
    rows_of: list[Row],
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
    summaries = [r.summary for r in rows_of]
    base = baseline_summary(summaries, baseline)
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    experiments = sorted({e for s in summaries for e in s.experiments})
    tested = rows_of[0].metric.replace("_", " ") if rows_of else ""
    against = (
        f" Δ, its confidence interval, Hedges' g, the adjusted p and the verdict (on {tested}) are against "
        f"{esc(base.label)}. {esc(tests_note(rows_of) or '')}"
        if baseline and base
        else ""
    )
    differences = (
        "Swept keys per variant" if sweep else "Config differences against " + (esc(base.label) if base else "—")
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{esc(title)}</h1>
<p class=note>Experiments: {esc(", ".join(experiments))}. Written {datetime.now():%Y-%m-%d %H:%M}.
Test accuracy and data loss come from the test set, evaluated once per run after model selection on a
held-out validation split. Values are mean ± std over seeds; gap = train accuracy − test accuracy
(both in inference mode), in percentage points.{against}</p>
<table><tr>{head}</tr>{body}</table>
{_figures(folder, captions or FIGURES)}
<h2>{differences}</h2>
{(_sweep_table(summaries, sweep) if sweep else _config_diffs(summaries, base)) or "<p>Only one variant.</p>"}
{_skipped(skipped)}
</body></html>
"""


def _figures(folder: Path, captions: dict[str, str]) -> str:
    """Each figure embedded as a PNG: only regular files of the folder itself (a link could embed any file of the
    machine into a page that gets shared); one that is not is named, not shown."""
    parts = []
    for name, caption in captions.items():
        try:
            data = read_file(folder / name, FIGURE_BYTES)
        except (OSError, ValueError) as exc:
            parts.append(f"<p class=note>{esc(name)} not shown: {esc(str(exc))}</p>")
            continue
        parts.append(
            f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>"
        )
    return "".join(parts)


def _sweep_table(summaries: list[Summary], sweep: dict[str, list]) -> str:
    cells = "".join(f"<th>{esc(k)}</th>" for k in sweep)
    lines = "".join(
        f"<tr><td>{esc(s.label)}</td>"
        + "".join(f"<td>{esc(json.dumps(comparable_config(s.config).get(k)))}</td>" for k in sweep)
        + "</tr>"
        for s in summaries
    )
    return f"<table class=diff><tr><th>variant</th>{cells}</tr>{lines}</table>"


def _config_diffs(summaries: list[Summary], base: Summary | None) -> str:
    diffs = []
    for g in summaries:
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
    return "".join(diffs)


def _skipped(skipped: list[Skipped]) -> str:
    if not skipped:
        return ""
    items = "".join(f"<li><code>{esc(str(s.path))}</code>: {esc(s.reason)}</li>" for s in skipped)
    return f"<h2>Skipped</h2><ul>{items}</ul>"
