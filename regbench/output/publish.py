"""Write a comparison to a folder: summary.md/.csv/.json, the figures, and a self-contained report.html."""

from __future__ import annotations

from pathlib import Path

from regbench.analysis.summary import Group, baseline_group, changed_keys, sweep_axes
from regbench.output.report_html import FIGURES, SEARCH_FIGURES, report_html
from regbench.output.tables import json_text, markdown, records, table, table_notes
from regbench.store.files import atomic_write, csv_text
from regbench.store.layout import REPORT, SUMMARY_CSV, SUMMARY_JSON, SUMMARY_MD
from regbench.store.reader import Skipped, find_runs


def write_summary(exp_dir: Path) -> list[Group]:
    """Read an experiment folder's runs back and write its summaries, figures and report.html: the same
    comparison as ``regbench compare EXP_DIR --out EXP_DIR`` (publish.compare, default baseline)."""
    from regbench.analysis.compare import compare
    from regbench.analysis.summary import ALL_COLUMNS
    from regbench.output.publish import write_all

    runs, _ = find_runs([exp_dir])
    if not runs:
        atomic_write(exp_dir / SUMMARY_MD, "No finished runs.\n")
        return []
    result = compare([exp_dir])
    write_all(
        result.groups,
        exp_dir,
        ALL_COLUMNS,
        with_test=result.with_test,
        baseline=result.baseline,
        title=f"regbench run: {exp_dir.name}",
    )
    return result.groups


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
    from regbench.output import figure_helper
    from regbench.output import figures as plots

    folder.mkdir(parents=True, exist_ok=True)
    diff = diff or []
    header, rows = table(groups, columns, with_test=with_test, diff=diff)
    atomic_write(folder / SUMMARY_MD, markdown(header, rows) + "".join(f"\n{n}\n" for n in table_notes(groups)))
    atomic_write(folder / SUMMARY_CSV, csv_text(records(groups, diff)))
    atomic_write(folder / SUMMARY_JSON, json_text(groups, diff, skipped or []))
    base = baseline_group(groups, baseline) if baseline else None
    jobs = [
        (plots.loss_plot, (groups, folder / "loss.png", base)),
        (plots.accuracy_plot, (groups, folder / "accuracy.png", base)),
        (plots.accuracy_bars, (groups, folder / "accuracy_bars.png")),
        (plots.weight_histogram, (groups, folder / "weights.png")),
    ]
    figures = dict(FIGURES)
    if "data.train_subset" in changed_keys([g.config for g in groups]):
        jobs.append((plots.learning_curve, (groups, folder / "learning_curve.png")))
        figures["learning_curve.png"] = "Test accuracy against training-set size"
    axes = sweep_axes(groups) if len(groups) > 2 else {}  # two variants: the config diff says it all
    if len(axes) == 1:
        jobs.append((plots.sweep_plot, (groups, next(iter(axes)), folder / "sweep.png", base)))
        figures["sweep.png"] = f"Test accuracy and generalization gap against {next(iter(axes))}, mean ± std"
    elif len(axes) >= 2:
        jobs.append((plots.heatmap, (groups, axes, folder / "heatmap.png")))
        figures["heatmap.png"] = "The sweep grid: mean ± std per cell; * where the verdict is better or worse"
    for name, caption in SEARCH_FIGURES.items():  # drawn by the search itself (study.search.draw)
        if (folder / name).is_file():
            figures[name] = caption
    figure_helper.draw(jobs, parallel=len(groups) > plots.SMALL_MULTIPLES_ABOVE)  # small multiples: worth a helper
    page = report_html(groups, folder, header, rows, baseline, skipped or [], title, figures, axes)
    atomic_write(folder / REPORT, page)
    return [folder / n for n in (SUMMARY_MD, SUMMARY_CSV, SUMMARY_JSON, *figures, REPORT)]
