"""``regbench run``: parse the options into a :class:`RunOptions`, run the study, print the table."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Annotated

import typer  # noqa: E402

from regbench.backend.choice import Backend
from regbench.cli.compare import print_agreement
from regbench.cli.console import console, fail, rich_table, say, shown, writable_folder
from regbench.cli.options import MARGIN, PAIRING, OutputFormat, test_kind
from regbench.cli.progress import PlainProgress, RichProgress
from regbench.errors import RegbenchError
from regbench.execution.executor import ExecutorKind
from regbench.store.layout import AGREEMENT
from regbench.study.options import RunOptions


def _seed_list(text: str) -> str:
    """--seeds 0,1,2 as a YAML list; anything else is bad input."""
    parts = [p.strip() for p in text.split(",")]
    if not parts or not all(p.isdigit() for p in parts):
        raise RegbenchError(f"--seeds {text}: expected comma-separated whole numbers >= 0, e.g. 0,1,2", exit_code=2)
    repeated = sorted({int(p) for p in parts if [int(q) for q in parts].count(int(p)) > 1})
    if repeated:
        twice = ", ".join(map(str, repeated))
        raise RegbenchError(
            f"--seeds {text}: expected each seed once (a seed names its run's folder); {twice} more than once",
            exit_code=2,
        )
    return "[" + ",".join(parts) + "]"


def run(
    config: Annotated[Path, typer.Argument(help="Study YAML, e.g. configs/dropout.yaml.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key: dotted.key=value (YAML value). Repeatable."),
    ] = None,
    seeds: Annotated[
        str | None, typer.Option("--seeds", help="Comma-separated seeds for every variant, e.g. 0,1,2.")
    ] = None,
    until_decided: Annotated[
        int | None,
        typer.Option(
            "--until-decided",
            metavar="MAX_SEEDS",
            help="Add seeds in rounds (twice as many each round) into the same folder until every comparison "
            "with the baseline is decided (better, worse or equivalent) or each variant has MAX_SEEDS seeds; "
            "every round decides at Pocock's level for the rounds planned, and a comparison once decided keeps its "
            "verdict (its variant gets no more seeds). Sets analysis.max_seeds. With --resume it continues.",
        ),
    ] = None,
    pairing: Annotated[bool | None, PAIRING] = None,
    margin: Annotated[float | None, MARGIN] = None,
    out: Annotated[Path, typer.Option("--out", help="Parent folder of the new experiment folder.")] = Path("outputs"),
    data_dir: Annotated[
        str | None,
        typer.Option(
            "--data-dir",
            help="Folder with the dataset (mnist.npz, IDX files, CIFAR batches): used, or the run fails.",
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
        ExecutorKind,
        typer.Option(
            "--executor", help="Where runs train; ray needs pip install 'regbench\\[ray]'.", case_sensitive=False
        ),
    ] = ExecutorKind.LOCAL,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="Ray cluster address; default: start a local Ray.")
    ] = None,
    gpus_per_task: Annotated[
        float | None,
        typer.Option(
            "--gpus-per-task",
            min=0.0,
            help="With --executor ray: GPUs each fused unit (or run trained alone) claims; 0 trains on CPUs. "
            "Default: one when the cluster has GPUs, so every GPU gets a unit of its own.",
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="Continue this experiment folder: skip finished runs, continue interrupted ones from their last "
            "finished epoch (output.checkpoint), train the rest.",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the planned runs and exit.")] = False,
    tensorboard: Annotated[
        bool,
        typer.Option(
            "--tensorboard/--no-tensorboard",
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
        Backend,
        typer.Option(
            "--backend",
            case_sensitive=False,
            help="Keras backend: auto (default: JAX for Dense stacks when installed, TensorFlow for CNNs), "
            "tensorflow, jax or torch. KERAS_BACKEND, when set, always wins. On JAX compiled programs are kept in "
            "~/.cache/regbench/jax (REGBENCH_COMPILE_CACHE=DIR moves it, =off turns it off).",
        ),
    ] = Backend.AUTO,
) -> None:
    """Train every variant x seed of a study and write a new experiment folder under --out.

    The folder holds the resolved config, environment, per-run history.csv and metrics.json, summary.csv,
    summary.md, figures and report.html. Existing folders are never overwritten; --resume continues one.
    Exit code: 0 when every run finished, 1 when any failed, 2 for bad input, 130 when interrupted.

    Examples:

        regbench run configs/dropout.yaml --set train.epochs=2 --seeds 0,1,2 --jobs 2

        regbench run configs/batchnorm.yaml --backends tensorflow,jax   # does the verdict survive the backend?

        regbench run configs/grid.yaml --backend tensorflow --no-fuse   # every run alone, on TensorFlow

        regbench run configs/dropout.yaml --until-decided 24   # add seeds until each verdict is decided
    """
    options = RunOptions(
        overrides=list(set_ or []),
        out=out,
        data_dir=data_dir,
        jobs=jobs,
        threads=threads,
        executor=executor,
        ray_address=ray_address,
        gpus_per_task=gpus_per_task,
        resume=resume,
        fuse=fuse,
        tensorboard=tensorboard,
        backend=backend,
    )
    displays: list[PlainProgress] = []

    def display(runs: int) -> PlainProgress:
        """A progress display for one training: live in a terminal, a line per event in a log or pipe."""
        displays.append(RichProgress(runs) if console.is_terminal else PlainProgress(runs))
        return displays[-1]

    try:
        options.overrides += _overrides(seeds, until_decided, margin, pairing)
        if resume is not None:
            options.overrides = _with_recorded(resume, options.overrides)
        experiment, planned = _load(config, options, dry_run)
        if dry_run:
            _print_dry_run(config, experiment, planned, options.overrides)
            return
        if backends is not None:
            _run_backends(config, experiment.name, backends, options)
            return
        from regbench.backend.choice import choose_backend
        from regbench.store.reader import read_experiment
        from regbench.study.run import run_study

        recorded = read_experiment(resume).runtime if resume is not None else None
        convolutional = any(p.config.model.kind == "cnn" for p in planned)
        chosen, why = choose_backend(backend, convolutional, prefer=(recorded or {}).get("backend"))
        say(
            (experiment.name, "bold"),
            f": {len(experiment.variants)} variant(s), {len(planned)} run(s) · backend {chosen} ({why}) · "
            + ("fused where possible" if fuse else "every run alone (--no-fuse)"),
        )
        start = time.perf_counter()
        result = run_study(experiment, options, why, display, lambda line: console.print(shown(line)))
    except RegbenchError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:
        where = next((d.path for d in reversed(displays) if d.path), None)
        done = sum(d.finished for d in displays)
        for line in _interrupt_hint(config, where, options.overrides, done):
            say(line, err=True, soft_wrap=True)
        raise typer.Exit(130) from None
    _print_result(experiment.name, result, time.perf_counter() - start)
    if result.failed:
        raise typer.Exit(1)


def _interrupt_hint(config: Path, where: Path | None, overrides: list[str], done: int = 0) -> list[str]:
    """What to type after Ctrl-C, as lines: the resume of the folder with the overrides it was started with (the
    same command again when no folder was written yet)."""
    if where is None:
        return ["Interrupted before anything was written; run the same command again."]
    again = shlex.join(["regbench", "run", str(config), "--resume", str(where), *_set_args(overrides)])
    return [f"Interrupted: {done} run(s) finished in this session and are saved. Continue with:", f"  {again}"]


def _set_args(overrides: list[str]) -> list[str]:
    return [a for item in overrides for a in ("--set", item)]


def _with_recorded(resume: Path, overrides: list[str]) -> list[str]:
    """A resume's overrides: those the folder was started with (its environment.json), then the ones given now
    (which win), so that ``--resume`` alone continues a study started with ``--set`` or ``--seeds``."""
    from regbench.store.reader import read_experiment

    recorded = (read_experiment(resume).provenance or {}).get("overrides")
    if not isinstance(recorded, list) or not all(isinstance(item, str) for item in recorded):
        return overrides
    missing = [item for item in recorded if item not in overrides]
    if missing:
        say(f"--resume: with the overrides {resume} was started with: {shlex.join(_set_args(missing))}", soft_wrap=True)
    return missing + overrides


def _overrides(seeds: str | None, until_decided: int | None, margin: float | None, pairing: bool | None) -> list[str]:
    """The options that set keys of the study, as --set items."""
    items = []
    if seeds is not None:
        items.append(f"train.seeds={_seed_list(seeds)}")
    if until_decided is not None:
        items.append(f"analysis.max_seeds={until_decided}")
    if margin is not None:
        items.append(f"analysis.margin={margin}")
    if pairing is not None:
        items.append(f"analysis.test={test_kind(pairing).value}")
    return items


def _print_dry_run(config: Path, experiment, planned, overrides: list[str]) -> None:
    if experiment.search is not None:
        _print_search_plan(experiment)
    if planned or experiment.search is None:
        _print_plan(experiment, planned)
    _print_override_effects(config, overrides)


def _load(config: Path, options: RunOptions, dry_run: bool):
    """The study and its planned runs (with --resume, which of them are done), after checking the options."""
    from regbench.config.loading import load
    from regbench.study.plan import check_resumable, mark_done, plan

    if not dry_run:
        writable_folder("--out", options.out)
    experiment = load(config, overrides=options.overrides)
    planned = plan(experiment)
    if dry_run and options.resume is not None:
        check_resumable(options.resume, experiment)
        mark_done(planned, options.resume)  # show which runs a resume would skip
    return experiment, planned


def _print_result(name: str, result, seconds: float) -> None:
    from regbench.analysis.summary import RUN_COLUMNS
    from regbench.output.tables import table, table_notes

    if result.comparison is not None:
        table_rows = result.comparison.rows
        header, rows = table(table_rows, RUN_COLUMNS, with_test=result.comparison.with_test)
        console.print(rich_table(header, rows, title=f"{name} — test set, evaluated once"))
        for note in table_notes(table_rows):
            say(note)
    if result.skipped:
        say(f"Skipped {len(result.skipped)} run(s) already finished in {result.path}")
    if result.trained_alone:
        reasons: dict[str, list[str]] = {}
        for key, why in result.trained_alone.items():
            reasons.setdefault(why, []).append(key)
        text = "; ".join(f"{', '.join(keys)} ({why})" for why, keys in reasons.items())
        say(f"Trained alone, not fused: {text}", soft_wrap=True)
    for key in result.diverged:
        say(("Diverged", "yellow"), f": {key} (loss became NaN or exploded; training stopped)")
    for key, error in result.failed.items():
        say(f"Failed: {key}: {error}", err=True)
    say(
        f"Wrote {result.path}/ in {seconds:.1f} s: {len(result.ran)} run(s) trained, "
        f"{len(result.skipped)} skipped, {len(result.failed)} failed"
    )


def _run_backends(config: Path, name: str, backends: str, options: RunOptions) -> None:
    """The study once per backend, each in a process of its own, then the cross-backend agreement."""
    from regbench.analysis.compare import compare as compare_runs
    from regbench.study.backends import run_on_backends

    if options.resume is not None:
        raise RegbenchError("--backends: cannot be combined with --resume (one folder, one backend)", 2)
    if options.backend != Backend.AUTO:
        raise RegbenchError("--backends: cannot be combined with --backend (it names the backends)", 2)
    names = [b.strip() for b in backends.split(",")]
    parent, code = run_on_backends(config, name, names, options.argv(exclude=("out", "resume", "backend")), options.out)
    if code in (2, 130):
        raise typer.Exit(code)
    try:
        result = compare_runs([parent])
    except RegbenchError as exc:
        raise fail(exc) from None
    from regbench.analysis.summary import runtime_label
    from regbench.output.tables import markdown
    from regbench.store.files import atomic_write

    if len({runtime_label(s.runtime) for s in result.summaries}) > 1:
        atomic_write(parent / AGREEMENT, markdown(*print_agreement(result.rows, OutputFormat.TABLE)))
    say(f"Wrote {parent}/ (one experiment folder per backend, agreement.md)")
    if code:
        raise typer.Exit(code)


def _print_override_effects(config: Path, overrides: list[str]) -> None:
    """Under the plan of --dry-run: what each --set changed, and in which variants."""
    from regbench.config.loading import override_effects

    for override, lines in override_effects(config, overrides):
        console.print(shown(f"--set {override}: " + ("changed nothing" if not lines else lines[0])), soft_wrap=True)
        for line in lines[1:]:
            console.print(shown(f"    {line}"), soft_wrap=True)


def _print_search_plan(experiment) -> None:
    s = experiment.search
    seeds = experiment.defaults.get("train", {}).get("seeds", [])
    console.print(
        shown(
            f"search: {s.trials} trials in batches of {s.batch} ({s.sampler}, seed {s.seed}), each on seeds {seeds}; "
            f"objective {s.objective} ({s.direction}), never a test metric; space: "
            + "; ".join(
                f"{k} in {v}" if isinstance(v, list) else f"{k} in [{v.low:g}, {v.high:g}]{' log' if v.log else ''}"
                for k, v in s.space.items()
            )
        ),
        soft_wrap=True,
    )


def _print_plan(experiment, planned) -> None:
    from regbench.analysis.summary import changed_keys
    from regbench.store.identity import comparable_config

    configs = [p.config.model_dump(mode="json") for p in planned]
    keys = changed_keys(configs)
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
                p.state.value,
            ]
        )
    title = f"{experiment.name}: {len(planned)} planned run(s)"
    console.print(rich_table(header, rows, title=title, left=("variant", "run id", "state")))
