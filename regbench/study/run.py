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
from regbench.execution.groups import Task
from regbench.execution.outcome import Outcome, Status
from regbench.store import layout
from regbench.store.writer import ExperimentFolder
from regbench.study.environment import check_same_runtime, environment, provenance
from regbench.study.options import RunOptions
from regbench.study.plan import PlannedRun, RunState, check_resumable, check_same_data, mark_done, plan


class Progress(Protocol):
    """What the driver tells the display. Runs are named by key, ``<variant>/seed-<seed>``."""

    def begin(self, path: Path) -> None: ...

    def start_run(self, key: str, epochs: int) -> None: ...

    def epoch(self, key: str, epoch: int, logs: dict[str, float]) -> None: ...

    def end_run(self, key: str, outcome: Outcome) -> None: ...

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
    options: RunOptions | None = None,
    progress: Progress | None = None,
    backend_choice: str | None = None,
) -> Result:
    """Train every planned run of ``experiment`` and write its experiment folder.

    A new folder ``<out>/<name>-<timestamp>`` is created, unless ``options.resume`` names an existing one:
    then runs whose complete metrics.json is there (same run id) are skipped, and unfinished or failed ones run
    again. Data are loaded before any folder is created, so a missing dataset leaves nothing behind. A run that
    raises is recorded in its folder's error.json and the others go on.

    Args:
        experiment: The loaded study.
        options: How to run it (:class:`RunOptions`; its ``overrides`` are already applied to ``experiment``).
        progress: Receives run and epoch updates.
        backend_choice: Why this backend was chosen (backend.choice.choose_backend), for environment.json.
    """
    from regbench.execution.executor import make_executor
    from regbench.execution.groups import make_groups, trained_alone
    from regbench.output import figure_helper
    from regbench.output.figures import SMALL_MULTIPLES_ABOVE
    from regbench.output.publish import write_summary

    o = options or RunOptions()
    progress = progress or _Silent()
    tensorboard = o.tensorboard or experiment.output.tensorboard
    if tensorboard:
        from regbench.output.tensorboard import check_available

        check_available()
    runs = plan(experiment)
    if o.resume is not None:
        check_resumable(o.resume, experiment)
        mark_done(runs, o.resume)
    todo = [r for r in runs if r.state is not RunState.FINISHED]
    output = experiment.output
    tasks = [
        Task(r.key, r.variant, r.seed, r.config.model_dump(mode="json"), o.data_dir, output.save_model) for r in todo
    ]

    if len(experiment.variants) > SMALL_MULTIPLES_ABOVE:
        figure_helper.start_helper()  # its imports overlap Keras'; it draws half of the figures at the end
    gpus = o.gpus_per_task if o.gpus_per_task is not None else experiment.execution.gpus_per_task
    executor = make_executor(o.executor, o.jobs, o.threads, o.ray_address, gpus)
    executor.start()
    # Loading every dataset now fails on missing or malformed data before anything is written; on --resume the
    # finished runs' data too, so that new runs are never added to runs trained on other data.
    loaded = runs if o.resume is not None else todo
    data = {id(r.config): splits_for(r.config, o.data_dir).identity for r in loaded}
    if o.resume is not None:
        check_same_data(runs, o.resume, lambda r: data[id(r.config)])
    sources = sorted({d["source"] for d in data.values()})
    executor.release_driver_data()

    if o.resume is not None:
        check_same_runtime(o.resume)
    try:
        folder = (
            ExperimentFolder(o.resume, experiment.name)
            if o.resume is not None
            else ExperimentFolder.create(Path(o.out), experiment.name)
        )
    except OSError as exc:
        raise RegbenchError(f"cannot create the experiment folder in {o.out}: {_why(exc)}") from None
    alone = trained_alone(tasks) if o.fuse else {}
    settings = dict(executor=o.executor, jobs=o.jobs, threads=o.threads, fuse=o.fuse, data_sources=sources)
    settings["data"] = [dict(d) for d in sorted({tuple(d.items()) for d in data.values()})]
    settings["provenance"] = provenance(experiment.source, o.overrides)
    settings.update(trained_alone=alone, tensorboard=tensorboard)
    settings["backend_choice"] = backend_choice or "KERAS_BACKEND or Keras' default"
    try:
        folder.write_header(resolved_dict(experiment), {**environment(), **settings})
    except OSError as exc:
        raise RegbenchError(f"cannot write {folder.path}: {_why(exc)}") from None
    progress.begin(folder.path)
    result = Result(folder.path, [], trained_alone=alone)
    for r in runs:
        if r.state is RunState.FINISHED:
            result.skipped.append(r.key)
            progress.skip_run(r.key)
    by_key = {r.key: r for r in runs}
    groups, left = [], tasks
    if output.checkpoint:  # on --resume, the groups with a checkpoint first, as they were
        groups, left = _continued(tasks, runs, folder.path, o.fuse, output.keep_checkpoint)
    groups += make_groups(left, o.fuse, workers=executor.parallel(), memory_bytes=executor.device_memory())
    pending = _checkpointed(groups, folder.path, output.keep_checkpoint) if output.checkpoint else {}
    with CtrlC() as ctrl_c:

        def on_start(task: Task) -> None:
            ctrl_c.check()
            progress.start_run(task.key, by_key[task.key].config.train.epochs)

        def on_epoch(key: str, epoch: int, logs: dict[str, float]) -> None:
            ctrl_c.check()
            progress.epoch(key, epoch, logs)

        for task, outcome in executor.launch(groups, on_start, on_epoch):
            outcome = _record(folder, by_key[task.key], task, outcome, result, tensorboard)
            if outcome.status.trained() and task.checkpoint in pending:
                _written(pending, task.checkpoint, output.keep_checkpoint)
            progress.end_run(task.key, outcome)
            ctrl_c.check()
    if output.checkpoint:
        _remove_empty(folder.path / layout.CHECKPOINTS)
    try:
        result.groups = write_summary(folder.path)
    except OSError as exc:
        raise RegbenchError(
            f"{folder.path}: could not write the summary ({_why(exc)}); the {len(result.ran) + len(result.skipped)} "
            "finished runs in it are kept: free some space, then run the study again with --resume "
            f"{folder.path} to train what is missing and write the summary"
        ) from None
    return result


def _continued(
    tasks: list[Task], runs: list[PlannedRun], exp_dir: Path, fuse: bool, keep: bool
) -> tuple[list[list[Task]], list[Task]]:
    """On --resume: the groups that continue from the checkpoints in ``exp_dir`` (execution.groups.
    resumable_groups), and the tasks left to group. A checkpoint whose runs are all written already (a kill
    between the last write and its deletion) goes now, unless output.keep_checkpoint."""
    from regbench.execution.groups import resumable_groups
    from regbench.store.checkpoints import unfinished

    found = unfinished(exp_dir)
    finished = {r.run_id for r in runs if r.state is RunState.FINISHED}
    for path, ids in found:
        if not keep and set(ids) <= finished:
            path.unlink(missing_ok=True)
    return resumable_groups(tasks, found, fuse) if found else ([], tasks)


def _checkpointed(groups: list[list[Task]], exp_dir: Path, keep: bool) -> dict[str, int]:
    """Give each group its checkpoint file (store.checkpoints.path_for its runs); returns how many runs of each
    are still to be written. Nothing when the folder for them cannot be made: runs then train without."""
    from regbench.store.checkpoints import path_for

    folder = exp_dir / layout.CHECKPOINTS
    try:
        folder.mkdir(exist_ok=True)
    except OSError:
        return {}
    if folder.is_symlink():  # never write through a link someone put in a shared folder
        return {}
    pending = {}
    for group in groups:
        path = str(path_for(exp_dir, [t.run_id for t in group]))
        for t in group:
            t.checkpoint, t.keep_checkpoint = path, keep
        pending[path] = len(group)
    return pending


def _written(pending: dict[str, int], path: str, keep: bool) -> None:
    """One more run of the group checkpointed in ``path`` is written; once all are, the checkpoint goes (unless
    output.keep_checkpoint). A group with a failed run keeps it: --resume continues from there."""
    pending[path] -= 1
    if pending[path] == 0 and not keep:
        Path(path).unlink(missing_ok=True)


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty (a failed group's checkpoint, kept ones) or gone


def _why(exc: OSError) -> str:
    """An OSError as one line: what failed on which file (a full disk, a permission)."""
    return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")


def _record(
    folder: ExperimentFolder, planned: PlannedRun, task: Task, outcome: Outcome, result: Result, tensorboard: bool
) -> Outcome:
    """Write one ended run into the experiment folder and the result; returns the outcome as recorded. A run
    that cannot be written (a full disk) is a failed run, and the sweep goes on: the runs written are kept and
    ``--resume`` trains the others once there is room."""
    if outcome.status.trained():
        metrics = {**outcome.metrics, "run_id": planned.run_id}
        try:
            path = folder.write_run(planned.variant, task.config, metrics, outcome.history, outcome.model)
            if tensorboard:
                from regbench.output.tensorboard import write_run_logs

                write_run_logs(path, planned.run_id, task.config, metrics, outcome.history)
        except OSError as exc:
            outcome = Outcome(Status.FAILED, error=f"could not write its results ({_why(exc)})")
        else:
            result.ran.append(task.key)
            if outcome.status is Status.DIVERGED:
                result.diverged.append(task.key)
            return outcome
    try:
        folder.write_error(planned.variant, planned.seed, planned.run_id, outcome.error, outcome.traceback)
    except OSError:
        pass  # the error is shown and in the result; an unwritten run trains again on --resume either way
    result.failed[task.key] = outcome.error
    return outcome


class CtrlC:
    """Make Ctrl-C stick for the length of a sweep.

    Python ignores an exception raised inside a weakref callback or finalizer, so a Ctrl-C that lands while a
    finished model is being freed would vanish and the sweep run on. This handler also remembers it, and
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
