"""Run a whole study: plan every variant x seed, skip what a resumed folder already holds, execute the rest
(here, in N processes, or on Ray), write each run as it ends, then summarize the experiment folder."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from regbench.analysis.summary import Group
from regbench.config.loading import resolved_dict
from regbench.config.schema import Experiment
from regbench.data.splits import splits_for
from regbench.errors import RegbenchError
from regbench.execution.jobs import Task
from regbench.output.publish import write_summary
from regbench.store.files import write_json
from regbench.store.writer import new_experiment_dir, run_dir, write_experiment_header, write_run
from regbench.study.environment import check_same_runtime, environment_or_keep
from regbench.study.plan import mark_done, plan


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
class Result:
    path: Path
    groups: list[Group]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    diverged: list[str] = field(default_factory=list)
    trained_alone: dict[str, str] = field(default_factory=dict)  # under --fuse: runs that could not be fused, why


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
    from regbench.execution.executor import Executor
    from regbench.execution.jobs import make_jobs, trained_alone

    progress = progress or _Silent()
    tensorboard = tensorboard or experiment.output.tensorboard
    if tensorboard:
        from regbench.output.tensorboard import check_available

        check_available()
    runs = plan(experiment)
    if resume is not None:
        if not (resume / "config.yaml").is_file():
            raise RegbenchError(f"--resume {resume}: not an experiment folder (no config.yaml)", exit_code=2)
        mark_done(runs, resume)
    todo = [r for r in runs if r.state != "finished"]
    tasks = [Task(r.key, r.variant, r.seed, r.config.model_dump(mode="json"), data_dir) for r in todo]

    from regbench.output import figure_helper
    from regbench.output.figures import SMALL_MULTIPLES_ABOVE

    if len(experiment.variants) > SMALL_MULTIPLES_ABOVE:
        figure_helper.start_helper()  # its imports overlap Keras'; it draws half of the figures at the end
    runner = Executor(executor, jobs, threads, ray_address)
    runner.start()
    sources = sorted(  # loading every dataset now fails on missing data before anything is written
        {splits_for(cfg, data_dir).source for cfg in {id(r.config): r.config for r in todo}.values()}
    )
    runner.data_checked()

    if resume is not None:
        check_same_runtime(resume)
    exp_dir = resume if resume is not None else new_experiment_dir(Path(out), experiment.name)
    alone = trained_alone(tasks) if fuse else {}
    env = environment_or_keep(
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

        work = make_jobs(tasks, fuse, workers=jobs)
        for task, outcome in runner.run(work, on_start, on_epoch):
            planned = by_key[task.key]
            folder = run_dir(exp_dir, planned.variant, planned.seed)
            if outcome["ok"]:
                (folder / "error.json").unlink(missing_ok=True)
                metrics = {**outcome["metrics"], "run_id": planned.run_id}
                write_run(exp_dir, experiment.name, planned.variant, task.config, metrics, outcome["history"])
                if tensorboard:
                    from regbench.output.tensorboard import write_run_logs

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
