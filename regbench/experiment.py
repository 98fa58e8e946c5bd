"""Run a whole study: plan every variant x seed, skip what a resumed folder already holds, execute the rest
(here, in N processes, or on Ray), write each run as it ends, then summarize the experiment folder."""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from regbench import __version__
from regbench.config import Experiment, VariantConfig, resolved_dict
from regbench.data import splits_for
from regbench.errors import ConfigError, RegbenchError
from regbench.executors import Task
from regbench.identity import run_id
from regbench.report import Group
from regbench.runs import (
    METRICS,
    atomic_write,
    find_runs,
    new_experiment_dir,
    run_dir,
    write_experiment_header,
    write_json,
    write_run,
)


class Progress(Protocol):
    """What the driver tells the display. Runs are named by key, ``<variant>/seed-<seed>``."""

    def begin(self, path: Path) -> None: ...

    def start_run(self, key: str, epochs: int) -> None: ...

    def epoch(self, key: str, epoch: int, logs: dict[str, float]) -> None: ...

    def end_run(self, key: str, outcome: dict[str, Any]) -> None: ...

    def skip_run(self, key: str) -> None: ...


class _Silent:
    def begin(self, path):
        pass

    def start_run(self, key, epochs):
        pass

    def epoch(self, key, epoch, logs):
        pass

    def end_run(self, key, outcome):
        pass

    def skip_run(self, key):
        pass


@dataclass
class PlannedRun:
    variant: str
    seed: int
    config: VariantConfig
    run_id: str
    state: str = "planned"  # planned | finished (already on disk) | stale (unfinished/failed: runs again)

    @property
    def key(self) -> str:
        return f"{self.variant}/seed-{self.seed}"


@dataclass
class Result:
    path: Path
    groups: list[Group]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    diverged: list[str] = field(default_factory=list)
    trained_alone: dict[str, str] = field(default_factory=dict)  # under --fuse: runs that could not be fused, why


def plan(experiment: Experiment, seeds: list[int] | None = None) -> list[PlannedRun]:
    """Every (variant, seed) of the experiment, in file order."""
    return [
        PlannedRun(name, seed, cfg, run_id(cfg.model_dump(mode="json"), seed))
        for name, cfg in experiment.variants.items()
        for seed in (seeds if seeds is not None else cfg.train.seeds)
    ]


def mark_done(runs: list[PlannedRun], exp_dir: Path) -> None:
    """Mark runs whose folder in ``exp_dir`` holds a complete metrics.json of the same run id as finished.

    Raises:
        ConfigError: when a folder holds a finished run of a *different* config (the study file changed).
    """
    conflicts = []
    for run in runs:
        folder = run_dir(exp_dir, run.variant, run.seed)
        try:
            record = json.loads((folder / METRICS).read_text())
        except FileNotFoundError:
            run.state = "stale" if folder.exists() else "planned"
            continue
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            run.state = "stale"
            continue
        if record.get("run_id") == run.run_id:
            run.state = "finished"
        else:
            conflicts.append(
                f"{folder}: holds run {record.get('run_id')} of another config than this study's "
                f"{run.run_id}; resume with the config the experiment was started with, or start a new one"
            )
    if conflicts:
        raise ConfigError(conflicts)


def environment() -> dict[str, Any]:
    """Versions, backend, host and devices: what a reader needs to judge the numbers."""
    import numpy

    from regbench.framework import compile_cache, import_keras, runtime

    keras = import_keras()  # with --jobs, the driver's first Keras import: without TensorFlow's start-up lines
    env: dict[str, Any] = {
        "regbench": __version__,
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "numpy": numpy.__version__,
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "command": " ".join(sys.argv),
        "runtime": runtime(),
    }
    if env["backend"] == "tensorflow":
        import tensorflow as tf

        env["tensorflow"] = tf.__version__
        env["gpus"] = [d.name for d in tf.config.list_physical_devices("GPU")]
    elif env["backend"] == "jax":
        import jax

        env["jax"] = jax.__version__
        env["compile_cache"] = compile_cache(keras)
        env["gpus"] = [str(d) for d in jax.devices() if d.platform != "cpu"]
    return env


def run_experiment(
    experiment: Experiment,
    out: Path = Path("outputs"),
    data_dir: str | None = None,
    progress: Progress | None = None,
    *,
    jobs: int = 1,
    executor: str = "local",
    ray_address: str | None = None,
    resume: Path | None = None,
    fuse: bool = True,
    threads: int = 1,
    tensorboard: bool = False,
    backend_choice: str | None = None,
) -> Result:
    """Train every planned run of ``experiment`` and write its experiment folder.

    A new folder ``out/<name>-<timestamp>`` is created, unless ``resume`` names an existing one: then runs
    whose complete metrics.json is there (same run id) are skipped, and unfinished or failed ones run again.
    Data are loaded before any folder is created, so a missing dataset leaves nothing behind. A run that
    raises is recorded in its folder's error.json and the others go on.

    Args:
        experiment: The loaded study.
        out: Parent folder of a new experiment folder. Defaults to ``outputs``.
        data_dir: Data directory for variants whose config sets no ``data.dir``.
        progress: Receives run and epoch updates.
        jobs: Runs at a time, each in its own process with its share of the CPU cores (local executor).
        executor: ``local`` or ``ray``.
        ray_address: Ray cluster address; None starts a local Ray instance.
        resume: An experiment folder to continue.
        fuse: Train runs of the same shape and schedule as branches of one model (see fused.py); runs that
            cannot be fused train alone. Defaults to True.
        threads: CPU threads per training process (0: the framework's default). One thread per process trained
            the seed MLP fastest on a 2-core machine; use --jobs to fill more cores.
        tensorboard: Write TensorBoard logs into each run folder (also when the study's output.tensorboard is
            true); see tblog.py.
        backend_choice: Why this backend was chosen (framework.choose_backend), for environment.json.
    """
    from regbench import executors

    progress = progress or _Silent()
    tensorboard = tensorboard or experiment.output.tensorboard
    if tensorboard:
        from regbench.tblog import check_available

        check_available()
    runs = plan(experiment)
    if resume is not None:
        if not (resume / "config.yaml").is_file():
            raise RegbenchError(f"--resume {resume}: not an experiment folder (no config.yaml)", exit_code=2)
        mark_done(runs, resume)
    todo = [r for r in runs if r.state != "finished"]
    tasks = [Task(r.key, r.variant, r.seed, r.config.model_dump(mode="json"), data_dir) for r in todo]

    from regbench import plots

    if len(experiment.variants) > plots.SMALL_MULTIPLES_ABOVE:
        plots.start_helper()  # its imports overlap Keras'; it draws half of the figures at the end
    runner = executors.Executor(executor, jobs, threads, ray_address)
    runner.start()
    sources = sorted(  # loading every dataset now fails on missing data before anything is written
        {splits_for(cfg, data_dir).source for cfg in {id(r.config): r.config for r in todo}.values()}
    )
    runner.data_checked()

    if resume is not None:
        check_same_runtime(resume)
    exp_dir = resume if resume is not None else new_experiment_dir(Path(out), experiment.name)
    alone = executors.trained_alone(tasks) if fuse else {}
    env = _environment_or_keep(
        exp_dir,
        executor=executor,
        jobs=jobs,
        threads=threads,
        fuse=fuse,
        data_sources=sources,
        trained_alone=alone,
        tensorboard=tensorboard,
        backend_choice=backend_choice or "KERAS_BACKEND or Keras' default",
    )
    write_experiment_header(exp_dir, resolved_dict(experiment), env)
    progress.begin(exp_dir)
    result = Result(exp_dir, [], trained_alone=alone)
    by_key = {r.key: r for r in runs}
    for r in runs:
        if r.state == "finished":
            result.skipped.append(r.key)
            progress.skip_run(r.key)

    with CtrlC() as ctrl_c:

        def on_start(task: Task) -> None:
            ctrl_c.check()
            progress.start_run(task.key, by_key[task.key].config.train.epochs)

        def on_epoch(key: str, epoch: int, logs: dict[str, float]) -> None:
            ctrl_c.check()
            progress.epoch(key, epoch, logs)

        work = executors.make_jobs(tasks, fuse, workers=jobs)
        for task, outcome in runner.run(work, on_start, on_epoch):
            planned = by_key[task.key]
            folder = run_dir(exp_dir, planned.variant, planned.seed)
            if outcome["ok"]:
                (folder / "error.json").unlink(missing_ok=True)
                metrics = {**outcome["metrics"], "run_id": planned.run_id}
                write_run(exp_dir, experiment.name, planned.variant, task.config, metrics, outcome["history"])
                if tensorboard:
                    from regbench.tblog import write_run_logs

                    write_run_logs(folder, planned.run_id, task.config, metrics, outcome["history"])
                result.ran.append(task.key)
                if metrics["status"] == "diverged":
                    result.diverged.append(task.key)
            else:
                write_json(folder / "error.json", {"run_id": planned.run_id, "seed": planned.seed, **outcome})
                result.failed[task.key] = outcome["error"]
            progress.end_run(task.key, outcome)
            ctrl_c.check()
    result.groups = write_summary(exp_dir)
    return result


BACKENDS = ("tensorflow", "jax", "torch")


def run_on_backends(config: Path, name: str, backends: list[str], args: list[str], out: Path) -> tuple[Path, int]:
    """Run one study once per Keras backend, each in a process of its own (Keras fixes its backend per process),
    into ``out/<name>-backends-<timestamp>/<backend>/``. Returns that folder and the worst exit code.

    Args:
        config: The study file.
        name: The study's name (names the folder).
        backends: Backend names, e.g. ["tensorflow", "jax"].
        args: Further ``regbench run`` arguments for every backend (``--set``, ``--seeds``, ``--jobs`` ...).
        out: Parent of the new folder.

    Raises:
        RegbenchError: (exit 2) for an unknown or uninstalled backend, before anything is written.
    """
    import importlib.util
    import subprocess

    problems = []
    for b in backends:
        if b not in BACKENDS:
            problems.append(f"--backends {b}: unknown backend; expected some of {', '.join(BACKENDS)}")
        elif importlib.util.find_spec(b) is None:
            extra = " (pip install 'regbench[jax]')" if b == "jax" else ""
            problems.append(f"--backends {b}: {b} is not installed in this environment{extra}")
    if len(set(backends)) < 2 and not problems:
        problems.append(f"--backends {','.join(backends)}: expected two or more backends, e.g. tensorflow,jax")
    if problems:
        raise RegbenchError(problems, exit_code=2)
    parent = new_experiment_dir(Path(out), f"{name}-backends")
    worst = 0
    for b in dict.fromkeys(backends):
        command = [sys.executable, "-m", "regbench", "run", str(config), *args, "--out", str(parent / b)]
        code = subprocess.run(command, env={**os.environ, "KERAS_BACKEND": b}, check=False).returncode
        worst = max(worst, code)
        if code in (2, 130):
            break
    return parent, worst


class CtrlC:
    """Make Ctrl-C stick for the length of a sweep.

    Python ignores an exception raised inside a weakref callback or finalizer, so a Ctrl-C that lands while a
    finished model is being freed used to vanish and the sweep ran on. This handler also remembers it, and
    :meth:`check` (called at every run start, epoch and run end) raises it again. Outside the main thread, or
    when someone else handles SIGINT, it only checks.
    """

    def __init__(self) -> None:
        self.seen = False
        self.previous: Any = None

    def __enter__(self) -> CtrlC:
        if threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _handle(self, signum: int, frame: Any) -> None:
        self.seen = True
        raise KeyboardInterrupt

    def check(self) -> None:
        if self.seen:
            raise KeyboardInterrupt


def check_same_runtime(exp_dir: Path) -> None:
    """Refuse to resume a folder whose runs another backend, framework version or batch order trained: one
    experiment folder holds runs of one runtime (see framework.runtime).

    Raises:
        RegbenchError: exit code 2, saying what differs and how to go on.
    """
    from regbench.framework import runtime
    from regbench.runs import experiment_runtime

    recorded = experiment_runtime(exp_dir)
    if recorded is None:
        return  # nothing recorded: nothing to compare against
    ours = runtime()
    differ = [f"{k} {recorded[k]} there, {v} here" for k, v in ours.items() if k in recorded and recorded[k] != v]
    if differ:
        hint = (
            f"run with KERAS_BACKEND={recorded['backend']}, or start a new experiment (without --resume)"
            if recorded.get("backend") and recorded["backend"] != ours["backend"]
            else "start a new experiment (without --resume)"
        )
        raise RegbenchError(
            f"--resume {exp_dir}: its runs were trained by another runtime ({'; '.join(differ)}); one experiment "
            f"folder holds runs of one runtime: {hint}",
            exit_code=2,
        )


def _environment_or_keep(exp_dir: Path, **settings: Any) -> dict[str, Any]:
    """The environment record; a resumed folder keeps its first one and lists later sessions under 'resumed'."""
    env = environment()
    env.update(settings)
    path = exp_dir / "environment.json"
    if path.is_file():
        try:
            first = json.loads(path.read_text())
            first.setdefault("resumed", []).append(env)
            return first
        except json.JSONDecodeError:
            pass
    return env


def write_summary(exp_dir: Path) -> list[Group]:
    """Read an experiment folder's runs back and write its summaries, figures and report.html: the same
    comparison as ``regbench compare EXP_DIR --out EXP_DIR`` (publish.compare, default baseline)."""
    from regbench.publish import compare, write_all
    from regbench.report import ALL_COLUMNS

    runs, _ = find_runs([exp_dir])
    if not runs:
        atomic_write(exp_dir / "summary.md", "No finished runs.\n")
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
