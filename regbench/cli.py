"""Command-line interface. Parses arguments, calls one library function per command, prints with rich.

TensorFlow/Keras are imported only inside the commands that train, so ``--help``, ``validate``,
``compare`` and ``schema`` answer at once.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from regbench.errors import RegbenchError

app = typer.Typer(
    help="Run and compare regularization studies (dropout, L1/L2, batch norm, early stopping) on MNIST.\n\n"
    "Example:\n\n    regbench run configs/dropout.yaml",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
if not console.is_terminal and "COLUMNS" not in os.environ:
    console = Console(width=200)  # logs and pipes: keep each table row on one line
err_console = Console(stderr=True, width=None if console.is_terminal else 200)


def _fail(exc: RegbenchError) -> typer.Exit:
    for line in exc.problems:
        err_console.print(f"Error: {line}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(exc.exit_code)


def rich_table(header: list[str], rows: list[list[str]], title: str | None = None) -> Table:
    t = Table(title=title, header_style="bold")
    for i, h in enumerate(header):
        t.add_column(h, justify="left" if i == 0 else "right", no_wrap=True)
    for row in rows:
        t.add_row(*row)
    return t


class PlainProgress:
    """One line per epoch and per finished run: for logs and pipes."""

    def __init__(self, total_runs: int):
        self.total, self.done = total_runs, 0

    def start_run(self, variant: str, seed: int, epochs: int) -> None:
        self.variant, self.seed, self.epochs = variant, seed, epochs

    def epoch(self, epoch: int, logs: dict[str, float]) -> None:
        print(
            f"[{self.done + 1}/{self.total}] {self.variant} seed={self.seed} epoch {epoch}/{self.epochs} "
            f"loss={logs.get('data_loss', float('nan')):.4f} val_loss={logs.get('val_data_loss', float('nan')):.4f} "
            f"val_acc={logs.get('val_accuracy', float('nan')):.4f}",
            flush=True,
        )

    def end_run(self, metrics: dict[str, Any]) -> None:
        self.done += 1
        print(
            f"[{self.done}/{self.total}] {self.variant} seed={self.seed} done: "
            f"test_acc={metrics['test_accuracy']:.4f} best_epoch={metrics['best_epoch']} "
            f"time={metrics['train_time_s']:.1f}s {metrics['status']}",
            flush=True,
        )


class RichProgress(PlainProgress):
    """A live display: overall runs, and the current run's epochs with its validation accuracy."""

    def __init__(self, total_runs: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        super().__init__(total_runs)
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.overall = self.bar.add_task("runs", total=total_runs, info="")
        self.current = None

    def __enter__(self):
        self.bar.start()
        return self

    def __exit__(self, *exc):
        self.bar.stop()

    def start_run(self, variant: str, seed: int, epochs: int) -> None:
        super().start_run(variant, seed, epochs)
        self.current = self.bar.add_task(f"{variant} seed={seed} epoch", total=epochs, info="")

    def epoch(self, epoch: int, logs: dict[str, float]) -> None:
        self.bar.update(self.current, completed=epoch, info=f"val_acc {logs.get('val_accuracy', float('nan')):.4f}")

    def end_run(self, metrics: dict[str, Any]) -> None:
        self.done += 1
        self.bar.update(
            self.current,
            completed=metrics["epochs_run"],
            total=metrics["epochs_run"],
            info=f"test_acc {metrics['test_accuracy']:.4f} ({metrics['status']})",
        )
        self.bar.update(self.overall, completed=self.done)


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Study YAML, e.g. configs/dropout.yaml.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key: dotted.key=value (YAML value). Repeatable."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Parent folder of the new experiment folder.")] = Path("outputs"),
    data_dir: Annotated[
        str | None,
        typer.Option(
            "--data-dir",
            help="Folder with mnist.npz / fashion_mnist.npz or IDX files.",
            envvar="REGBENCH_DATA_DIR",
            show_envvar=True,
        ),
    ] = None,
) -> None:
    """Train every variant x seed of a study and write a new experiment folder under --out.

    The folder holds the resolved config, environment, per-run history.csv and metrics.json, summary.csv,
    summary.md, loss.png and accuracy.png. Existing folders are never overwritten.

    Example:

        regbench run configs/dropout.yaml --set train.epochs=2 --data-dir ../shared/data
    """
    from regbench.config import load

    try:
        experiment = load(config, overrides=set_ or [])
        from regbench.experiment import run_experiment

        total = sum(len(v.train.seeds) for v in experiment.variants.values())
        console.print(f"[bold]{experiment.name}[/]: {len(experiment.variants)} variant(s), {total} run(s)")
        start = time.perf_counter()
        if console.is_terminal:
            with RichProgress(total) as progress:
                result = run_experiment(experiment, out=out, data_dir=data_dir, progress=progress)
        else:
            result = run_experiment(experiment, out=out, data_dir=data_dir, progress=PlainProgress(total))
    except RegbenchError as exc:
        raise _fail(exc) from None
    from regbench.report import RUN_COLUMNS, table

    header, rows = table(result.groups, RUN_COLUMNS, with_test=any(g.delta is not None for g in result.groups))
    console.print(rich_table(header, rows, title=f"{experiment.name} — test set, evaluated once"))
    console.print(f"Wrote {result.path}/ in {time.perf_counter() - start:.1f} s", highlight=False)


@app.command()
def validate(
    configs: Annotated[list[Path], typer.Argument(help="One or more study YAML files.")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override: dotted.key=value.")] = None,
) -> None:
    """Check study files without training: every problem in every file is reported.

    Exit code 0 when all are valid, 2 otherwise.

    Example:

        regbench validate configs/*.yaml
    """
    from regbench.config import load
    from regbench.errors import ConfigError

    failed = False
    for path in configs:
        try:
            experiment = load(path, overrides=set_ or [])
        except ConfigError as exc:
            failed = True
            _fail(exc)
            continue
        runs = sum(len(v.train.seeds) for v in experiment.variants.values())
        console.print(
            f"{path}: ok ({experiment.name}: {len(experiment.variants)} variant(s), {runs} run(s))", highlight=False
        )
    if failed:
        raise typer.Exit(2)


@app.command()
def compare(
    paths: Annotated[list[Path], typer.Argument(help="Experiment folders, run folders, or a folder above them.")],
    baseline: Annotated[
        str | None, typer.Option("--baseline", "-b", help="Variant to compare against: Δ accuracy and Welch p-value.")
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option(
            "--sort",
            help="Sort rows by: variant, n, test_accuracy, test_data_loss, best_epoch, "
            "stopped_epoch, generalization_gap, sparsity, weight_l2, train_time_s, delta, p_value.",
        ),
    ] = None,
    reverse: Annotated[bool, typer.Option("--reverse", help="Sort descending.")] = False,
    only_changed: Annotated[
        bool, typer.Option("--only-changed", help="Add a column per config key that differs between variants.")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, md, csv or json (on stdout).")] = "table",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Also write summary.md/.csv/.json, the figures and report.html to this folder."),
    ] = None,
) -> None:
    """Put finished runs side by side: mean ± std over seeds, Δ and p-value against a baseline.

    Runs of the same variant (same name, same config apart from the seed) are pooled, also across
    experiment folders; same-named variants with different configs stay apart, labelled with their
    experiment. Unfinished or corrupt run folders are skipped with a reason.

    Example:

        regbench compare outputs/* --baseline baseline --only-changed --out reports/dropout
    """
    from regbench.publish import compare as compare_runs
    from regbench.publish import json_text
    from regbench.report import ALL_COLUMNS, markdown, records, table
    from regbench.runs import csv_text

    if fmt not in ("table", "md", "csv", "json"):
        raise _fail(RegbenchError(f"--format {fmt}: expected one of table, md, csv, json", exit_code=2))
    try:
        result = compare_runs(paths, baseline=baseline, sort=sort, reverse=reverse, only_changed=only_changed)
    except RegbenchError as exc:
        raise _fail(exc) from None
    for s in result.skipped:
        err_console.print(f"skipped {s.path}: {s.reason}", markup=False, highlight=False, soft_wrap=True)
    header, rows = table(result.groups, ALL_COLUMNS, with_test=result.with_test, diff=result.diff)
    if fmt == "table":
        console.print(rich_table(header, rows, title="test set; mean ± std over seeds"))
    elif fmt == "md":
        print(markdown(header, rows), end="")
    elif fmt == "csv":
        print(csv_text(records(result.groups, result.diff)), end="")
    else:
        print(json_text(result.groups, result.diff, result.skipped), end="")
    if out is not None:
        from regbench.publish import write_all

        write_all(
            result.groups,
            out,
            ALL_COLUMNS,
            with_test=result.with_test,
            baseline=baseline,
            diff=result.diff,
            skipped=result.skipped,
        )
        err_console.print(f"Wrote {out}/report.html and summaries", highlight=False)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the study file format (for editor completion and checks).

    Example:

        regbench schema > regbench.schema.json
    """
    from regbench.config import json_schema

    print(json.dumps(json_schema(), indent=2))


def main() -> None:
    # Keep TensorFlow's C++ start-up chatter out of the user's terminal unless they asked for it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        sys.exit(130)
