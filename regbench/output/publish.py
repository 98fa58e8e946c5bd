"""Write a comparison to a folder: summary.md/.csv/.json, the figures, and a self-contained report.html."""

from __future__ import annotations

from pathlib import Path

from regbench.analysis.compare import Comparison
from regbench.analysis.summary import baseline_summary, changed_keys, sweep_axes
from regbench.output.report_html import FIGURES, SEARCH_FIGURES, report_html
from regbench.output.tables import json_text, markdown, markdown_cell, records, table, table_notes
from regbench.store.files import atomic_write, csv_text
from regbench.store.layout import REPORT, SUMMARY_CSV, SUMMARY_JSON, SUMMARY_MD
from regbench.store.reader import Skipped, find_runs


def write_summary(exp_dir: Path) -> Comparison | None:
    """Read an experiment folder's runs back and write its summaries, figures and report.html: the same
    comparison as ``regbench compare EXP_DIR --out EXP_DIR`` (default baseline). None: no finished run."""
    from regbench.analysis.compare import compare
    from regbench.analysis.summary import ALL_COLUMNS

    runs, _ = find_runs([exp_dir])
    if not runs:
        atomic_write(exp_dir / SUMMARY_MD, "No finished runs.\n")
        return None
    result = compare([exp_dir])
    write_all(result, exp_dir, ALL_COLUMNS, title=f"regbench run: {exp_dir.name}", skipped=[])
    return result


WRITTEN = (SUMMARY_MD, SUMMARY_CSV, SUMMARY_JSON, REPORT, *FIGURES, "learning_curve.png", "sweep.png", "heatmap.png")


def check_writable(folder: Path) -> None:
    """Refuse, before anything is written, a folder where a file this writes is something else (a folder, a
    link: replaced, it would hide or change what lies elsewhere).

    Raises:
        RegbenchError: exit code 2, naming each.
    """
    from regbench.errors import RegbenchError

    problems = [
        f"{folder / name}: is {'a symbolic link' if (folder / name).is_symlink() else 'a folder'}; expected a file "
        "regbench writes (or nothing): remove it or choose another --out"
        for name in WRITTEN
        if (folder / name).is_symlink() or (folder / name).is_dir()
    ]
    if problems:
        raise RegbenchError(problems, exit_code=2)


def write_all(
    comparison: Comparison,
    folder: Path,
    columns: list[str],
    *,
    skipped: list[Skipped] | None = None,
    title: str = "regbench comparison",
) -> list[Path]:
    """Write every summary file, figure and report.html of ``comparison`` into ``folder`` (``skipped``: the
    folders to list as skipped; default: the comparison's)."""
    from regbench.output import figure_helper
    from regbench.output import figures as plots

    folder.mkdir(parents=True, exist_ok=True)
    rows_of, diff, baseline = comparison.rows, comparison.diff, comparison.baseline
    skipped = comparison.skipped if skipped is None else skipped
    summaries = comparison.summaries
    header, rows = table(rows_of, columns, with_test=comparison.with_test, diff=diff)
    notes = "".join(f"\n{markdown_cell(n)}\n" for n in table_notes(rows_of))
    atomic_write(folder / SUMMARY_MD, markdown(header, rows) + notes)
    atomic_write(folder / SUMMARY_CSV, csv_text(records(rows_of, diff)))
    atomic_write(folder / SUMMARY_JSON, json_text(rows_of, diff, skipped))
    base = baseline_summary(summaries, baseline) if baseline else None
    jobs = [
        (plots.loss_plot, (summaries, folder / "loss.png", base)),
        (plots.accuracy_plot, (summaries, folder / "accuracy.png", base)),
        (plots.accuracy_bars, (summaries, folder / "accuracy_bars.png")),
        (plots.weight_histogram, (summaries, folder / "weights.png")),
    ]
    figures = dict(FIGURES)
    if "data.train_subset" in changed_keys([s.config for s in summaries]):
        jobs.append((plots.learning_curve, (summaries, folder / "learning_curve.png")))
        figures["learning_curve.png"] = "Test accuracy against training-set size"
    axes = sweep_axes(summaries) if len(summaries) > 2 else {}  # two variants: the config diff says it all
    if len(axes) == 1:
        jobs.append((plots.sweep_plot, (summaries, next(iter(axes)), folder / "sweep.png", base)))
        figures["sweep.png"] = f"Test accuracy and generalization gap against {next(iter(axes))}, mean ± std"
    elif len(axes) >= 2:
        jobs.append((plots.heatmap, (rows_of, axes, folder / "heatmap.png")))
        figures["heatmap.png"] = "The sweep grid: mean ± std per cell; * where the verdict is better or worse"
    for name, caption in SEARCH_FIGURES.items():  # drawn by the search itself (study.search.draw)
        if (folder / name).is_file() and not (folder / name).is_symlink():
            figures[name] = caption
    figure_helper.draw(jobs, parallel=len(summaries) > plots.SMALL_MULTIPLES_ABOVE)  # small multiples: worth a helper
    page = report_html(rows_of, folder, header, rows, baseline, skipped, title, figures, axes)
    atomic_write(folder / REPORT, page)
    return [folder / n for n in (SUMMARY_MD, SUMMARY_CSV, SUMMARY_JSON, *figures, REPORT)]
