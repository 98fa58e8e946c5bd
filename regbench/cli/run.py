"""Command-line interface. Parses arguments, calls one library function per command, prints with rich.

TensorFlow/Keras are imported only inside the commands that train, so ``--help``, ``validate``,
``compare`` and ``schema`` answer at once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer  # noqa: E402

from regbench.cli.compare import print_agreement
from regbench.cli.console import console, err_console, fail, rich_table, writable_folder
from regbench.cli.progress import PlainProgress, RichProgress
from regbench.errors import RegbenchError  # noqa: E402


def _seed_list(text: str) -> str:
    """--seeds 0,1,2 as a YAML list; anything else is bad input."""
    parts = [p.strip() for p in text.split(",")]
    if not parts or not all(p.isdigit() for p in parts):
        raise RegbenchError(f"--seeds {text}: expected comma-separated whole numbers >= 0, e.g. 0,1,2", exit_code=2)
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
    from regbench.config.loading import load

    overrides = list(set_ or [])
    progress: PlainProgress | None = None
    try:
        if seeds is not None:
            overrides.append(f"train.seeds={_seed_list(seeds)}")
        from regbench.execution.executor import Executor

        Executor(executor)  # checks the name before anything is loaded
        if not dry_run:
            writable_folder("--out", out)
        experiment = load(config, overrides=overrides)
        from regbench.study.plan import mark_done, plan

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
        from regbench.backend.choice import choose_backend
        from regbench.store.reader import experiment_runtime
        from regbench.study.run import run_experiment

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
        raise fail(exc) from None
    except KeyboardInterrupt:
        where = progress.path if progress is not None and progress.path else "<experiment folder>"
        done = progress.finished if progress is not None else 0
        err_console.print(
            f"Interrupted: {done} run(s) finished in this session and are saved. Continue with:\n"
            f"  regbench run {config} --resume {where}",
            highlight=False,
        )
        raise typer.Exit(130) from None
    from regbench.analysis.summary import RUN_COLUMNS
    from regbench.output.tables import runtimes_note, table

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
    from regbench.analysis.compare import compare as compare_runs
    from regbench.study.backends import run_on_backends

    parent, code = run_on_backends(config, name, [b.strip() for b in backends], args, out)
    if code in (2, 130):
        raise typer.Exit(code)
    try:
        result = compare_runs([parent])
    except RegbenchError as exc:
        raise fail(exc) from None
    from regbench.analysis.summary import runtime_label
    from regbench.output.tables import markdown
    from regbench.store.files import atomic_write

    if len({runtime_label(g.runtime) for g in result.groups}) > 1:
        atomic_write(parent / "agreement.md", markdown(*print_agreement(result.groups, "table")))
    console.print(f"Wrote {parent}/ (one experiment folder per backend, agreement.md)", highlight=False)
    if code:
        raise typer.Exit(code)


def _print_plan(experiment, planned) -> None:
    from regbench.analysis.summary import changed_keys_of
    from regbench.store.identity import comparable_config

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
