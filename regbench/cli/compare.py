"""``regbench compare``: finished runs side by side, and the cross-backend view."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer  # noqa: E402

from regbench.cli.console import console, fail, rich_table, say, writable_folder
from regbench.cli.options import MARGIN, PAIRING, OutputFormat, test_kind
from regbench.errors import RegbenchError  # noqa: E402


def compare(
    paths: Annotated[list[Path], typer.Argument(help="Experiment folders, run folders, or a folder above them.")],
    baseline: Annotated[
        str | None,
        typer.Option("--baseline", "-b", help="Variant to compare against: Δ, its CI, p and a verdict per row."),
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option(
            "--sort",
            help="Sort rows by: variant, n, test_accuracy, test_data_loss, best_epoch, "
            "stopped_epoch, generalization_gap, sparsity, weight_l2, max_unit_norm, train_time_s, delta, p_value.",
        ),
    ] = None,
    reverse: Annotated[bool, typer.Option("--reverse", help="Sort descending.")] = False,
    test: Annotated[
        str,
        typer.Option(
            "--test",
            help="Metric that Δ, p and the verdict are about, e.g. generalization_gap, sparsity, best_epoch.",
        ),
    ] = "test_accuracy",
    pairing: Annotated[bool | None, PAIRING] = None,
    margin: Annotated[float | None, MARGIN] = None,
    only_changed: Annotated[
        bool, typer.Option("--only-changed", help="Add a column per config key that differs between variants.")
    ] = False,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="What to print on stdout.", case_sensitive=False)
    ] = OutputFormat.TABLE,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Also write summary.md/.csv/.json, the figures and report.html to this folder."),
    ] = None,
    show_provenance: Annotated[
        bool,
        typer.Option(
            "--provenance",
            help="Also list, per experiment folder, where its numbers came from: regbench version, study file and "
            "its sha256, --set overrides, git commit (and whether the tree had uncommitted changes).",
        ),
    ] = False,
    across_backends: Annotated[
        bool,
        typer.Option(
            "--across-backends",
            help="Per variant, Δ and p on each backend side by side, whether the verdicts agree, and p for the "
            "difference between backends (folders of one study run on several backends, e.g. by run --backends).",
        ),
    ] = False,
) -> None:
    """Put finished runs side by side: mean ± std over seeds, Δ, p and a verdict against a baseline.

    Each row is tested against the baseline by a paired t-test where its runs pair seed by seed with the
    baseline's (the same seeds, one folder: runs of one seed share their initial weights, batch order and split),
    else by Welch's; --paired or --welch forces one. The table has one error budget, α (analysis.alpha): each
    row's CI is at 1 − α / rows, and the verdict is read off it: better or worse when it excludes 0 ("within
    ±margin" when it also lies inside the margin), equivalent when it lies within ±margin, else inconclusive, with
    the seeds per variant that would decide it at 80 % power.

    Runs of the same variant (same name, same config apart from the seed, same backend and versions) are
    pooled, also across experiment folders; same-named variants with different configs stay apart, labelled
    with their experiment, and runs of different backends stay apart, labelled e.g. 'batchnorm @ jax' (each
    tested against the baseline of its own backend). Unfinished or corrupt run folders are skipped with a reason.

    Examples:

        regbench compare outputs/* --baseline baseline --only-changed --out reports/dropout

        regbench compare outputs/batchnorm-backends-20261126-120000 -b baseline --across-backends
    """
    from regbench.analysis.compare import compare as compare_runs

    try:
        if margin is not None and not 0 < margin < float("inf"):
            raise RegbenchError(f"--margin {margin}: expected a number above 0", exit_code=2)
        if out is not None:
            from regbench.output.publish import check_writable

            writable_folder("--out", out)
            check_writable(out)
        result = compare_runs(
            paths,
            baseline=baseline,
            sort=sort,
            reverse=reverse,
            only_changed=only_changed,
            metric=test,
            margin=margin,
            test=test_kind(pairing),
        )
    except RegbenchError as exc:
        raise fail(exc) from None
    if across_backends:
        print_agreement(result.rows, fmt)
        return
    _print_skipped(result.skipped)
    _print_table(result, fmt)
    if show_provenance:
        _print_provenance(result.summaries)
    if out is not None:
        from regbench.analysis.summary import ALL_COLUMNS
        from regbench.output.publish import write_all

        write_all(result, out, ALL_COLUMNS)
        say(f"Wrote {out}/report.html and summaries", err=True)


def _print_provenance(summaries) -> None:
    """One row per experiment folder compared: where its numbers came from (environment.json provenance)."""
    records = {r.experiment_dir: r.folder for s in summaries for r in s.runs}
    rows = []
    for folder in sorted(records):
        p = records[folder].provenance or {}
        git = p.get("git") or {}
        commit = f"{str(git.get('commit', ''))[:10]}{' (dirty)' if git.get('dirty') else ''}" if git else "—"
        sha = str(p.get("config_sha256") or "—")[:12]
        overrides = " ".join(f"--set {o}" for o in p.get("overrides") or []) or "—"
        study = Path(str(p["config_file"])).name if p.get("config_file") else "—"
        rows.append([folder.name, str(p.get("regbench", "—")), study, sha, commit, overrides])
    header = ["experiment", "regbench", "study file", "sha256", "git commit", "overrides"]
    console.print(rich_table(header, rows, title="provenance", left=tuple(header)))


def _print_skipped(skipped) -> None:
    """One line per skipped folder, on stderr; runs superseded by a newer folder's are summed up past three."""
    superseded = [s for s in skipped if s.superseded]
    for s in skipped:
        if not s.superseded or len(superseded) <= 3:
            say(f"skipped {s.path}: {s.reason}", err=True, soft_wrap=True)
    if len(superseded) > 3:
        say(
            f"note: {len(superseded)} runs repeat a variant and seed found again in a newer folder, which is used "
            f"instead (e.g. {superseded[0].path}); --format json lists them all",
            err=True,
            soft_wrap=True,
        )


def _print_table(result, fmt: OutputFormat) -> None:
    """The comparison on stdout: the terminal shows the columns `run` shows; md, csv and json hold them all."""
    from regbench.analysis.summary import ALL_COLUMNS, RUN_COLUMNS
    from regbench.output.tables import json_text, markdown, markdown_cell, records, table, table_notes
    from regbench.store.files import csv_text

    notes = table_notes(result.rows)
    if fmt is OutputFormat.TABLE:
        header, rows = table(result.rows, RUN_COLUMNS, with_test=result.with_test, diff=result.diff)
        console.print(rich_table(header, rows, title="test set; mean ± std over seeds"))
        for note in notes:
            say(note)
    elif fmt is OutputFormat.MD:
        header, rows = table(result.rows, ALL_COLUMNS, with_test=result.with_test, diff=result.diff)
        print(markdown(header, rows) + "".join(f"\n{markdown_cell(note)}\n" for note in notes), end="")
    elif fmt is OutputFormat.CSV:
        print(csv_text(records(result.rows, result.diff)), end="")
    else:
        print(json_text(result.rows, result.diff, result.skipped), end="")


def print_agreement(table_rows, fmt: OutputFormat) -> tuple[list[str], list[list[str]]]:
    """Print the cross-backend view of compare --across-backends (and run --backends); return its table."""
    from regbench.analysis.summary import runtime_label
    from regbench.output.tables import backend_agreement, markdown

    runtimes = [r.summary.runtime for r in table_rows]
    if len({runtime_label(r) for r in runtimes}) < 2:
        raise fail(
            RegbenchError(
                "--across-backends: every run here was trained by one runtime "
                f"({runtime_label(runtimes[0])}); expected folders from two or more backends, "
                "e.g. from regbench run CONFIG --backends tensorflow,jax",
                exit_code=2,
            )
        )
    header, rows = backend_agreement(table_rows)
    base = next((r.summary.variant for r in table_rows if r.baseline), "?")
    title = f"Does each verdict survive the backend? Δ, p adj. and verdict against '{base}' on each backend"
    if fmt is OutputFormat.MD:
        print(markdown(header, rows), end="")
    elif fmt in (OutputFormat.CSV, OutputFormat.JSON):
        records = [dict(zip(header, row, strict=True)) for row in rows]
        if fmt is OutputFormat.JSON:
            print(json.dumps(records, indent=2))
        else:
            from regbench.store.files import csv_text

            print(csv_text(records), end="")
    else:
        console.print(rich_table(header, rows, title=title))
    return header, rows
