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

# regbench's own config and record models need no pydantic plugins, and looking them up scans every installed
# package's entry points (about 40 ms of each command; measured with bench/compare.py). Users can still set it.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer  # noqa: E402
from rich.console import Console
from rich.table import Table  # noqa: E402

from regbench.errors import RegbenchError  # noqa: E402

app = typer.Typer(
    help="Run and compare regularization studies (dropout, L1/L2, max-norm, noise, batch norm, early stopping) "
    "on MNIST.\n\nExample:\n\n    regbench run configs/dropout.yaml\n\n"
    "Shell completion: regbench --install-completion",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
if not console.is_terminal and "COLUMNS" not in os.environ:
    console = Console(width=200)  # logs and pipes: keep each table row on one line
err_console = Console(stderr=True, width=None if console.is_terminal else 200)


def _version(value: bool) -> None:
    if value:
        from regbench import __version__

        print(f"regbench {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print regbench's version and exit."),
    ] = None,
) -> None:
    """Run and compare regularization studies on MNIST."""


def _writable_folder(option: str, path: Path) -> None:
    """Bad input, exit 2: ``path`` is a file, or a folder this user cannot create or write in."""
    if path.exists() and not path.is_dir():
        raise RegbenchError(f"{option} {path}: is a file; expected a folder (it is created if missing)", exit_code=2)
    parent = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise RegbenchError(f"{option} {path}: cannot write in {parent} (permission denied)", exit_code=2)


def _seed_list(text: str) -> str:
    """--seeds 0,1,2 as a YAML list; anything else is bad input."""
    parts = [p.strip() for p in text.split(",")]
    if not parts or not all(p.isdigit() for p in parts):
        raise RegbenchError(f"--seeds {text}: expected comma-separated whole numbers >= 0, e.g. 0,1,2", exit_code=2)
    return "[" + ",".join(parts) + "]"


def _fail(exc: RegbenchError) -> typer.Exit:
    for line in exc.problems:
        err_console.print(f"Error: {line}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(exc.exit_code)


def rich_table(
    header: list[str], rows: list[list[str]], title: str | None = None, left: tuple[str, ...] = ("variant",)
) -> Table:
    t = Table(title=title, header_style="bold")
    for h in header:
        t.add_column(h, justify="left" if h in left else "right", no_wrap=True)
    for row in rows:
        t.add_row(*row)
    return t


class PlainProgress:
    """One line per epoch and per finished run: for logs and pipes."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def __init__(self, total_runs: int):
        self.total, self.done, self.epochs = total_runs, 0, {}
        self.path: Path | None = None
        self.finished = 0

    def begin(self, path: Path) -> None:
        self.path = path
        console.print(f"Writing {path}/", highlight=False)

    def start_run(self, key: str, epochs: int) -> None:
        self.epochs[key] = epochs

    def skip_run(self, key: str) -> None:
        self.done += 1
        print(f"[{self.done}/{self.total}] {key}: already finished, skipped", flush=True)

    def epoch(self, key: str, epoch: int, logs: dict[str, float]) -> None:
        print(
            f"[{self.done + 1}/{self.total}] {key} epoch {epoch}/{self.epochs.get(key, '?')} "
            f"loss={logs.get('data_loss', float('nan')):.4f} val_loss={logs.get('val_data_loss', float('nan')):.4f} "
            f"val_acc={logs.get('val_accuracy', float('nan')):.4f}",
            flush=True,
        )

    def end_run(self, key: str, outcome: dict[str, Any]) -> None:
        self.done += 1
        self.finished += outcome["ok"]
        print(f"[{self.done}/{self.total}] {key} {_outcome_text(outcome)}", flush=True)


def _outcome_text(outcome: dict[str, Any]) -> str:
    if not outcome["ok"]:
        return f"FAILED: {outcome['error']}"
    m = outcome["metrics"]
    return (
        f"{m['status']}: test_acc={m['test_accuracy']:.4f} best_epoch={m['best_epoch']} "
        f"epochs={m['epochs_run']} time={m['train_time_s']:.1f}s"
    )


class RichProgress(PlainProgress):
    """A live display: all runs so far, each with its epochs and validation accuracy, and the overall count."""

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
        self.overall = self.bar.add_task("all runs", total=total_runs, info="")
        self.tasks: dict[str, Any] = {}

    def __enter__(self):
        self.bar.start()
        return self

    def __exit__(self, *exc):
        self.bar.stop()

    def skip_run(self, key: str) -> None:
        self.done += 1
        self.bar.update(self.overall, completed=self.done, info=f"{self.done} done")

    def start_run(self, key: str, epochs: int) -> None:
        super().start_run(key, epochs)
        self.tasks[key] = self.bar.add_task(f"{key} epoch", total=epochs, info="")

    def epoch(self, key: str, epoch: int, logs: dict[str, float]) -> None:
        if key in self.tasks:
            info = f"val_acc {logs.get('val_accuracy', float('nan')):.4f}"
            self.bar.update(self.tasks[key], completed=epoch, info=info)

    def end_run(self, key: str, outcome: dict[str, Any]) -> None:
        self.done += 1
        self.finished += outcome["ok"]
        task = self.tasks.get(key)
        if task is None:
            task = self.tasks[key] = self.bar.add_task(f"{key} epoch", total=1, info="")
        epochs = outcome["metrics"]["epochs_run"] if outcome["ok"] else None
        self.bar.update(task, completed=epochs or 0, total=epochs or 1, info=_outcome_text(outcome))
        self.bar.update(self.overall, completed=self.done)


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Study YAML, e.g. configs/dropout.yaml.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key: dotted.key=value (YAML value). Repeatable."),
    ] = None,
    seeds: Annotated[
        str | None, typer.Option("--seeds", help="Comma-separated seeds for every variant, e.g. 0,1,2.")
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
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Runs at a time, in separate processes.")] = 1,
    threads: Annotated[
        int,
        typer.Option(
            "--threads",
            min=0,
            help="CPU threads per training process; 0: the framework's default. "
            "One thread trained these small MLPs fastest; add --jobs to use more cores.",
        ),
    ] = 1,
    executor: Annotated[
        str, typer.Option("--executor", help="local, or ray (needs pip install 'regbench\\[ray]').")
    ] = "local",
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="Ray cluster address; default: start a local Ray.")
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option("--resume", help="Continue this experiment folder: skip finished runs, redo the rest."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the planned runs and exit.")] = False,
    tensorboard: Annotated[
        bool,
        typer.Option(
            "--tensorboard",
            help="Write TensorBoard logs (Keras' layout, plus hyperparameters) into each run folder's "
            "tensorboard/; view them with: tensorboard --logdir outputs/",
        ),
    ] = False,
    backends: Annotated[
        str | None,
        typer.Option(
            "--backends",
            help="Run the study once per Keras backend (comma-separated, e.g. tensorflow,jax), each in its own "
            "process, into one folder; then show per variant whether Δ and its significance agree.",
        ),
    ] = None,
    fuse: Annotated[
        bool,
        typer.Option(
            "--fuse/--no-fuse",
            help="Train runs of the same MLP shape as branches of one model (default), each branch on its own "
            "seed's batch order: the same runs as alone, far fewer compiled steps. Runs that cannot be fused "
            "(batch norm, CNNs, clipping) train alone and the run says so. --no-fuse trains every run alone.",
        ),
    ] = True,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="Keras backend: auto (default: JAX for Dense stacks when installed, TensorFlow for CNNs), "
            "tensorflow, jax or torch. KERAS_BACKEND, when set, always wins. On JAX compiled programs are kept in "
            "~/.cache/regbench/jax (REGBENCH_COMPILE_CACHE=DIR moves it, =off turns it off).",
        ),
    ] = "auto",
) -> None:
    """Train every variant x seed of a study and write a new experiment folder under --out.

    The folder holds the resolved config, environment, per-run history.csv and metrics.json, summary.csv,
    summary.md, figures and report.html. Existing folders are never overwritten; --resume continues one.
    Exit code: 0 when every run finished, 1 when any failed, 2 for bad input, 130 when interrupted.

    Examples:

        regbench run configs/dropout.yaml --set train.epochs=2 --seeds 0,1,2 --jobs 2

        regbench run configs/batchnorm.yaml --backends tensorflow,jax   # does the verdict survive the backend?

        regbench run configs/grid.yaml --backend tensorflow --no-fuse   # every run alone, on TensorFlow
    """
    from regbench.config import load

    overrides = list(set_ or [])
    progress: PlainProgress | None = None
    try:
        if seeds is not None:
            overrides.append(f"train.seeds={_seed_list(seeds)}")
        from regbench.executors import Executor

        Executor(executor)  # checks the name before anything is loaded
        if not dry_run:
            _writable_folder("--out", out)
        experiment = load(config, overrides=overrides)
        from regbench.experiment import mark_done, plan

        planned = plan(experiment)
        if backends is not None and not dry_run:
            if resume is not None:
                raise RegbenchError("--backends: cannot be combined with --resume (one folder, one backend)", 2)
            if backend != "auto":
                raise RegbenchError("--backends: cannot be combined with --backend (it names the backends)", 2)
            forwarded = [a for item in overrides for a in ("--set", item)] + ["--jobs", str(jobs)]
            forwarded += ["--threads", str(threads), "--executor", executor] + (["--fuse"] if fuse else ["--no-fuse"])
            forwarded += ["--data-dir", data_dir] if data_dir else []
            forwarded += ["--ray-address", ray_address] if ray_address else []
            forwarded += ["--tensorboard"] if tensorboard else []
            _run_backends(config, experiment.name, backends.split(","), forwarded, out)
            return
        if dry_run:
            if resume is not None and (resume / "config.yaml").is_file():
                mark_done(planned, resume)  # show which runs a resume would skip
            _print_plan(experiment, planned)
            return
        from regbench.experiment import run_experiment
        from regbench.framework import choose_backend
        from regbench.runs import experiment_runtime

        recorded = experiment_runtime(resume) if resume is not None else None
        convolutional = any(p.config.model.kind == "cnn" for p in planned)
        chosen, why = choose_backend(backend, convolutional, prefer=(recorded or {}).get("backend"))
        total = len(planned)
        console.print(
            f"[bold]{experiment.name}[/]: {len(experiment.variants)} variant(s), {total} run(s) · backend {chosen} "
            f"({why}) · {'fused where possible' if fuse else 'every run alone (--no-fuse)'}",
            highlight=False,
        )
        start = time.perf_counter()
        kwargs = dict(
            out=out,
            data_dir=data_dir,
            jobs=jobs,
            executor=executor,
            ray_address=ray_address,
            resume=resume,
            fuse=fuse,
            threads=threads,
            tensorboard=tensorboard,
            backend_choice=why,
        )
        progress = RichProgress(total) if console.is_terminal else PlainProgress(total)
        with progress:
            result = run_experiment(experiment, progress=progress, **kwargs)
    except RegbenchError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        where = progress.path if progress is not None and progress.path else "<experiment folder>"
        done = progress.finished if progress is not None else 0
        err_console.print(
            f"Interrupted: {done} run(s) finished in this session and are saved. Continue with:\n"
            f"  regbench run {config} --resume {where}",
            highlight=False,
        )
        raise typer.Exit(130) from None
    from regbench.report import RUN_COLUMNS, runtimes_note, table

    if result.groups:
        header, rows = table(result.groups, RUN_COLUMNS, with_test=any(g.test_note for g in result.groups))
        console.print(rich_table(header, rows, title=f"{experiment.name} — test set, evaluated once"))
        note = runtimes_note(result.groups)
        if note:
            console.print(note, highlight=False)
    if result.skipped:
        console.print(f"Skipped {len(result.skipped)} run(s) already finished in {result.path}", highlight=False)
    if result.trained_alone:
        reasons = {}
        for key, why in result.trained_alone.items():
            reasons.setdefault(why, []).append(key)
        text = "; ".join(f"{', '.join(keys)} ({why})" for why, keys in reasons.items())
        console.print(f"Trained alone, not fused: {text}", highlight=False, soft_wrap=True)
    for key in result.diverged:
        console.print(f"[yellow]Diverged[/]: {key} (loss became NaN or exploded; training stopped)", highlight=False)
    for key, error in result.failed.items():
        err_console.print(f"Failed: {key}: {error}", markup=False, highlight=False)
    console.print(
        f"Wrote {result.path}/ in {time.perf_counter() - start:.1f} s: {len(result.ran)} run(s) trained, "
        f"{len(result.skipped)} skipped, {len(result.failed)} failed",
        highlight=False,
    )
    if result.failed:
        raise typer.Exit(1)


def _run_backends(config: Path, name: str, backends: list[str], args: list[str], out: Path) -> None:
    from regbench.experiment import run_on_backends
    from regbench.publish import compare as compare_runs

    parent, code = run_on_backends(config, name, [b.strip() for b in backends], args, out)
    if code in (2, 130):
        raise typer.Exit(code)
    try:
        result = compare_runs([parent])
    except RegbenchError as exc:
        raise _fail(exc) from None
    from regbench.report import markdown, runtime_label
    from regbench.runs import atomic_write

    if len({runtime_label(g.runtime) for g in result.groups}) > 1:
        atomic_write(parent / "agreement.md", markdown(*_print_agreement(result.groups, "table")))
    console.print(f"Wrote {parent}/ (one experiment folder per backend, agreement.md)", highlight=False)
    if code:
        raise typer.Exit(code)


def _print_plan(experiment, planned) -> None:
    from regbench.identity import comparable_config
    from regbench.report import changed_keys_of

    configs = [p.config.model_dump(mode="json") for p in planned]
    keys = changed_keys_of(configs)
    header = ["#", "variant", "seed", "run id", *keys, "epochs", "state"]
    rows = []
    for i, (p, cfg) in enumerate(zip(planned, configs, strict=True), start=1):
        flat = comparable_config(cfg)
        rows.append(
            [
                str(i),
                p.variant,
                str(p.seed),
                p.run_id,
                *(json.dumps(flat.get(k)) for k in keys),
                str(p.config.train.epochs),
                p.state,
            ]
        )
    title = f"{experiment.name}: {len(planned)} planned run(s)"
    console.print(rich_table(header, rows, title=title, left=("variant", "run id", "state")))


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
            "stopped_epoch, generalization_gap, sparsity, weight_l2, max_unit_norm, train_time_s, delta, p_value.",
        ),
    ] = None,
    reverse: Annotated[bool, typer.Option("--reverse", help="Sort descending.")] = False,
    test: Annotated[
        str,
        typer.Option(
            "--test",
            help="Metric that Δ and the Welch p-value are about, e.g. generalization_gap, sparsity, best_epoch.",
        ),
    ] = "test_accuracy",
    only_changed: Annotated[
        bool, typer.Option("--only-changed", help="Add a column per config key that differs between variants.")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, md, csv or json (on stdout).")] = "table",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Also write summary.md/.csv/.json, the figures and report.html to this folder."),
    ] = None,
    across_backends: Annotated[
        bool,
        typer.Option(
            "--across-backends",
            help="Per variant, Δ and p on each backend side by side, whether the verdicts agree, and p for the "
            "difference between backends (folders of one study run on several backends, e.g. by run --backends).",
        ),
    ] = False,
) -> None:
    """Put finished runs side by side: mean ± std over seeds, Δ and p-value against a baseline.

    Runs of the same variant (same name, same config apart from the seed, same backend and versions) are
    pooled, also across experiment folders; same-named variants with different configs stay apart, labelled
    with their experiment, and runs of different backends stay apart, labelled e.g. 'batchnorm @ jax' (each
    tested against the baseline of its own backend). Unfinished or corrupt run folders are skipped with a reason.

    Examples:

        regbench compare outputs/* --baseline baseline --only-changed --out reports/dropout

        regbench compare outputs/batchnorm-backends-20261126-120000 -b baseline --across-backends
    """
    from regbench.publish import compare as compare_runs
    from regbench.publish import json_text
    from regbench.report import ALL_COLUMNS, RUN_COLUMNS, markdown, records, runtimes_note, table
    from regbench.runs import csv_text

    if fmt not in ("table", "md", "csv", "json"):
        raise _fail(RegbenchError(f"--format {fmt}: expected one of table, md, csv, json", exit_code=2))
    try:
        result = compare_runs(
            paths,
            baseline=baseline,
            sort=sort,
            reverse=reverse,
            only_changed=only_changed,
            metric=test,
        )
    except RegbenchError as exc:
        raise _fail(exc) from None
    if across_backends:
        _print_agreement(result.groups, fmt)
        return
    superseded = [s for s in result.skipped if s.superseded]
    for s in result.skipped:
        if not s.superseded or len(superseded) <= 3:
            err_console.print(f"skipped {s.path}: {s.reason}", markup=False, highlight=False, soft_wrap=True)
    if len(superseded) > 3:
        err_console.print(
            f"note: {len(superseded)} runs repeat a variant and seed found again in a newer folder, which is used "
            f"instead (e.g. {superseded[0].path}); --format json lists them all",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    header, rows = table(result.groups, ALL_COLUMNS, with_test=result.with_test, diff=result.diff)
    note = runtimes_note(result.groups)
    if fmt == "table":  # the terminal shows the columns `run` shows; md, csv, json and --out hold them all
        header, rows = table(result.groups, RUN_COLUMNS, with_test=result.with_test, diff=result.diff)
        console.print(rich_table(header, rows, title="test set; mean ± std over seeds"))
        if note:
            console.print(note, highlight=False)
    elif fmt == "md":
        print(markdown(header, rows) + (f"\n{note}\n" if note else ""), end="")
    elif fmt == "csv":
        print(csv_text(records(result.groups, result.diff)), end="")
    else:
        print(json_text(result.groups, result.diff, result.skipped), end="")
    if out is not None:
        from regbench.publish import write_all

        try:
            _writable_folder("--out", out)
        except RegbenchError as exc:
            raise _fail(exc) from None
        write_all(
            result.groups,
            out,
            ALL_COLUMNS,
            with_test=result.with_test,
            baseline=result.baseline,
            diff=result.diff,
            skipped=result.skipped,
        )
        err_console.print(f"Wrote {out}/report.html and summaries", highlight=False)


def _print_agreement(groups, fmt: str) -> tuple[list[str], list[list[str]]]:
    """Print the cross-backend view of compare --across-backends (and run --backends); return its table."""
    from regbench.report import backend_agreement, markdown, runtime_label

    if len({runtime_label(g.runtime) for g in groups}) < 2:
        raise _fail(
            RegbenchError(
                "--across-backends: every run here was trained by one runtime "
                f"({runtime_label(groups[0].runtime)}); expected folders from two or more backends, "
                "e.g. from regbench run CONFIG --backends tensorflow,jax",
                exit_code=2,
            )
        )
    header, rows = backend_agreement(groups)
    base = next((g.variant for g in groups if g.test_note == "baseline"), "?")
    title = f"Does each verdict survive the backend? Δ and Welch p (Holm) against '{base}' on each backend"
    if fmt == "md":
        print(markdown(header, rows), end="")
    elif fmt in ("csv", "json"):
        records = [dict(zip(header, row, strict=True)) for row in rows]
        if fmt == "json":
            print(json.dumps(records, indent=2))
        else:
            from regbench.runs import csv_text

            print(csv_text(records), end="")
    else:
        console.print(rich_table(header, rows, title=title))
    return header, rows


export_app = typer.Typer(
    help="Export finished runs to other tools.\n\nExample:\n\n    regbench export mlflow outputs/* "
    "--tracking-uri sqlite:///mlflow.db",
    no_args_is_help=True,
)
app.add_typer(export_app, name="export")


@export_app.command("mlflow")
def export_mlflow(
    paths: Annotated[list[Path], typer.Argument(help="Experiment folders, run folders, or a folder above them.")],
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow tracking URI, e.g. sqlite:///mlflow.db or a server URL; default: MLflow's own.",
            envvar="MLFLOW_TRACKING_URI",
        ),
    ] = None,
    experiment: Annotated[
        str | None, typer.Option("--experiment", help="MLflow experiment name; default: each run's study name.")
    ] = None,
) -> None:
    """One MLflow run per regbench run: config as params, results and per-epoch history as metrics, metrics.json,
    history.csv and figures as artifacts, tags for study, variant, seed and run id. Running it again adds only
    runs that are not there yet. Needs pip install 'regbench\\[mlflow]'.

    Example:

        regbench export mlflow outputs/* --tracking-uri sqlite:///mlflow.db && mlflow ui --backend-store-uri sqlite:///mlflow.db
    """
    from regbench.mlflow_export import export_mlflow as export

    try:
        result = export(paths, tracking_uri=tracking_uri, experiment=experiment)
    except RegbenchError as exc:
        raise _fail(exc) from None
    for s in result.skipped:
        err_console.print(f"skipped {s.path}: {s.reason}", markup=False, highlight=False, soft_wrap=True)
    console.print(
        f"Exported {len(result.added)} run(s) to MLflow experiment(s) {', '.join(sorted(result.experiments))}; "
        f"{len(result.existing)} were there already",
        highlight=False,
    )


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
    except SystemExit as done:  # how typer ends every command, with its exit code
        _exit(done.code)


def _exit(code: int | str | None) -> None:
    """End the process with ``code`` the way ``sys.exit`` does, less Python's teardown of every loaded module:
    after Keras, JAX and matplotlib that took about 0.45 s on the 2-core CPU, 2-3 % of a 48-run sweep, and every
    command waited for it. Output streams are flushed and exit handlers run first (a Ray cluster's shutdown,
    temporary folders); while another thread that Python would wait for is still running, exit as usual."""
    import atexit
    import threading

    run_handlers = getattr(atexit, "_run_exitfuncs", None)
    others = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    if run_handlers is None or others:
        sys.exit(code)
    if isinstance(code, str):
        print(code, file=sys.stderr)
    status = code if isinstance(code, int) else (0 if code is None else 1)
    run_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing left to show anyway
            pass
    os._exit(status)
