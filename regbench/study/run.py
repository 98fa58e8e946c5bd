"""Run a whole study: plan every variant x seed, skip what a resumed folder already holds, execute the rest
(here, in N processes, or on Ray), write each run as it ends, then summarize the experiment folder."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from regbench.analysis.compare import Comparison
from regbench.config.loading import resolved_dict
from regbench.config.schema import Experiment, OutputConfig
from regbench.data.splits import forget_splits, splits_for
from regbench.errors import RegbenchError
from regbench.execution.executor import Capacity, Executor
from regbench.execution.outcome import Outcome, Status
from regbench.execution.units import Task, Unit
from regbench.output.publish import write_summary
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
    comparison: Comparison | None = None  # the folder's table, once written
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
    again. Every check of a resume and the data is done before anything is written, so a missing dataset leaves
    nothing behind. A run that raises is recorded in its folder's error.json and the others go on.

    Args:
        experiment: The loaded study.
        options: How to run it (:class:`RunOptions`; its ``overrides`` are already applied to ``experiment``).
        progress: Receives run and epoch updates.
        backend_choice: Why this backend was chosen (backend.choice.choose_backend), for environment.json.
    """
    from regbench.execution.executor import make_executor
    from regbench.execution.units import trained_alone
    from regbench.output import figure_helper
    from regbench.output.figures import SMALL_MULTIPLES_ABOVE

    o = options or RunOptions()
    settings = o.settings(experiment)
    progress = progress or _Silent()
    if settings.tensorboard:
        from regbench.output.tensorboard import check_available

        check_available()
    runs = plan(experiment)
    if o.resume is not None:
        check_resumable(o.resume, experiment)
        mark_done(runs, o.resume)
    save = experiment.output.save_model
    todo = [r for r in runs if r.state is not RunState.FINISHED]
    tasks = [Task(r.key, r.variant, r.seed, r.config, r.run_id, o.data_dir, save) for r in todo]
    if len(experiment.variants) > SMALL_MULTIPLES_ABOVE:
        figure_helper.start_helper()  # its imports overlap Keras'; it draws half of the figures at the end
    executor = make_executor(settings.executor)
    capacity = executor.setup()
    data = check_data(runs if o.resume is not None else todo, o)
    if capacity.loads_own_data:
        forget_splits()  # its workers load their own copy
    if o.resume is not None:
        check_same_runtime(o.resume)
    folder = _open_folder(experiment, o)
    alone = trained_alone(tasks) if o.fuse else {}
    _write_header(folder, experiment, o, settings.tensorboard, data, alone, backend_choice)
    progress.begin(folder.path)
    result = Result(folder.path, trained_alone=alone)
    for r in runs:
        if r.state is RunState.FINISHED:
            result.skipped.append(r.key)
            progress.skip_run(r.key)
    units = _units(tasks, runs, folder.path, o.fuse, experiment.output, capacity)
    _train(executor, units, {r.key: r for r in runs}, folder, result, progress, settings.tensorboard)
    if experiment.output.checkpoint:
        _remove_empty(folder.path / layout.CHECKPOINTS)
    try:
        result.comparison = write_summary(folder.path)
    except OSError as exc:
        raise RegbenchError(
            f"{folder.path}: could not write the summary ({_why(exc)}); the {len(result.ran) + len(result.skipped)} "
            "finished runs in it are kept: free some space, then run the study again with --resume "
            f"{folder.path} to train what is missing and write the summary"
        ) from None
    return result


def check_data(runs: list[PlannedRun], o: RunOptions) -> dict[int, dict[str, str]]:
    """Load every dataset now, so that missing or malformed data fail before anything is written; on --resume
    the finished runs' data too, so that new runs are never added to runs trained on other data. Returns each
    config's data identity (by the config's id)."""
    data = {id(r.config): splits_for(r.config, o.data_dir).identity for r in runs}
    if o.resume is not None:
        check_same_data(runs, o.resume, lambda r: data[id(r.config)])
    return data


def _open_folder(experiment: Experiment, o: RunOptions) -> ExperimentFolder:
    try:
        if o.resume is not None:
            return ExperimentFolder(o.resume, experiment.name)
        return ExperimentFolder.create(Path(o.out), experiment.name)
    except OSError as exc:
        raise RegbenchError(f"cannot create the experiment folder in {o.out}: {_why(exc)}") from None


def _write_header(
    folder: ExperimentFolder,
    experiment: Experiment,
    o: RunOptions,
    tensorboard: bool,
    data: dict[int, dict[str, str]],
    alone: dict[str, str],
    backend_choice: str | None,
) -> None:
    """config.yaml and environment.json: the study as resolved, and what a reader needs to judge its numbers."""
    sources = sorted({d["source"] for d in data.values()})
    settings: dict[str, Any] = dict(
        executor=o.executor.value, jobs=o.jobs, threads=o.threads, fuse=o.fuse, data_sources=sources
    )
    settings["data"] = [dict(d) for d in sorted({tuple(d.items()) for d in data.values()})]
    settings["provenance"] = provenance(experiment.source, o.overrides)
    settings.update(trained_alone=alone, tensorboard=tensorboard)
    settings["backend_choice"] = backend_choice or "KERAS_BACKEND or Keras' default"
    try:
        folder.write_header(resolved_dict(experiment), {**environment(), **settings})
    except OSError as exc:
        raise RegbenchError(f"cannot write {folder.path}: {_why(exc)}") from None


def _units(
    tasks: list[Task], runs: list[PlannedRun], exp_dir: Path, fuse: bool, output: OutputConfig, capacity: Capacity
) -> list[Unit]:
    """The units to train: on --resume, those with a checkpoint first, as they were; then the rest, made into units
    for the executor's capacity; each with its checkpoint file (output.checkpoint)."""
    from regbench.execution.units import make_units

    continued, left = [], tasks
    if output.checkpoint:
        continued, left = _continued(tasks, runs, exp_dir, fuse, output.keep_checkpoint)
    grouped = continued + make_units(left, fuse, capacity.parallel, memory_bytes=capacity.device_memory)
    if not output.checkpoint or not _checkpoint_folder(exp_dir):
        return [Unit(tuple(ts)) for ts in grouped]
    from regbench.store.checkpoints import path_for

    return [Unit(tuple(ts), path_for(exp_dir, [t.run_id for t in ts]), output.keep_checkpoint) for ts in grouped]


def _train(
    executor: Executor,
    units: list[Unit],
    planned: dict[str, PlannedRun],
    folder: ExperimentFolder,
    result: Result,
    progress: Progress,
    tensorboard: bool,
) -> None:
    """Launch the units; write each run as it ends; delete a unit's checkpoint once all its runs are written."""
    pending = {u.checkpoint: len(u.tasks) for u in units if u.checkpoint is not None}
    keep = {u.checkpoint: u.keep_checkpoint for u in units if u.checkpoint is not None}
    unit_of = {t.key: u for u in units for t in u.tasks}
    with CtrlC() as ctrl_c:

        def on_start(task: Task) -> None:
            ctrl_c.check()
            progress.start_run(task.key, planned[task.key].config.train.epochs)

        def on_epoch(key: str, epoch: int, row: dict[str, float]) -> None:
            ctrl_c.check()
            progress.epoch(key, epoch, row)

        for task, outcome in executor.launch(units, on_start, on_epoch):
            outcome = _record(folder, planned[task.key], task, outcome, result, tensorboard)
            checkpoint = unit_of[task.key].checkpoint
            if outcome.status.trained() and checkpoint in pending:
                _written(pending, checkpoint, keep[checkpoint])
            progress.end_run(task.key, outcome)
            ctrl_c.check()


def _continued(
    tasks: list[Task], runs: list[PlannedRun], exp_dir: Path, fuse: bool, keep: bool
) -> tuple[list[list[Task]], list[Task]]:
    """On --resume: the units that continue from the checkpoints in ``exp_dir`` (execution.units.
    resumable_units), and the tasks left. A checkpoint whose runs are all written already (a kill
    between the last write and its deletion) goes now, unless output.keep_checkpoint."""
    from regbench.execution.units import resumable_units
    from regbench.store.checkpoints import unfinished

    found = unfinished(exp_dir)
    finished = {r.run_id for r in runs if r.state is RunState.FINISHED}
    for path, ids in found:
        if not keep and set(ids) <= finished:
            path.unlink(missing_ok=True)
    return resumable_units(tasks, found, fuse) if found else ([], tasks)


def _checkpoint_folder(exp_dir: Path) -> bool:
    """Make the folder of checkpoints; False when it cannot be made or is a link (never written through: runs
    then train without checkpoints)."""
    folder = exp_dir / layout.CHECKPOINTS
    try:
        folder.mkdir(exist_ok=True)
    except OSError:
        return False
    return not folder.is_symlink()


def _written(pending: dict[Path, int], path: Path, keep: bool) -> None:
    """One more run of the unit checkpointed in ``path`` is written; once all are, the checkpoint goes (unless
    output.keep_checkpoint). A unit with a failed run keeps it: --resume continues from there."""
    pending[path] -= 1
    if pending[path] == 0 and not keep:
        path.unlink(missing_ok=True)


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty (a failed unit's checkpoint, kept ones) or gone


def _why(exc: OSError) -> str:
    """An OSError as one line: what failed on which file (a full disk, a permission)."""
    return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")


def _record(
    folder: ExperimentFolder, planned: PlannedRun, task: Task, outcome: Outcome, result: Result, tensorboard: bool
) -> Outcome:
    """Write one ended run into the experiment folder and the result; returns the outcome as recorded. A run
    that cannot be written (a full disk) is a failed run, and the sweep goes on: the runs written are kept and
    ``--resume`` trains the others once there is room."""
    if outcome.run is not None:
        config = task.config.model_dump(mode="json")
        try:
            path = folder.write_run(planned.variant, config, outcome.run)
            if tensorboard:
                from regbench.output.tensorboard import write_run_logs

                write_run_logs(path, planned.run_id, config, outcome.run)
        except OSError as exc:
            outcome = Outcome.failed(f"could not write its results ({_why(exc)})", with_traceback=False)
        except ValueError as exc:  # a link where its folder should be (store.files.check_no_links)
            outcome = Outcome.failed(f"could not write its results ({exc})", with_traceback=False)
        else:
            result.ran.append(task.key)
            if outcome.status is Status.DIVERGED:
                result.diverged.append(task.key)
            return outcome
    try:
        folder.write_error(planned.variant, planned.seed, planned.run_id, outcome.error, outcome.traceback)
    except (OSError, ValueError):
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


class Trainings:
    """One study trained into one folder several times over (rounds of seeds, batches of search trials): each
    time with a progress display of its own (``display(runs)``, a context manager), each after the first as a
    resume of the folder the first wrote. :meth:`totals` counts the runs every time trained."""

    def __init__(self, options: RunOptions, backend_choice: str | None, display: Callable[[int], Any]):
        self.options, self.backend_choice, self.display = options, backend_choice, display
        self.trained: list[str] = []
        self.last: Result | None = None

    def __call__(self, current: Experiment) -> Result:
        with self.display(len(plan(current))) as progress:
            self.last = run_experiment(current, self.options, progress=progress, backend_choice=self.backend_choice)
        self.options = replace(self.options, resume=self.last.path)
        self.trained += self.last.ran
        return self.last

    def totals(self) -> Result:
        """The last result, counting the runs every time trained (and skipped only what none of them trained)."""
        assert self.last is not None
        self.last.ran = self.trained
        self.last.skipped = [k for k in self.last.skipped if k not in self.trained]
        return self.last


def run_study(
    experiment: Experiment,
    options: RunOptions,
    backend_choice: str | None,
    display: Callable[[int], Any],
    report: Callable[[str], None],
) -> Result:
    """Run a study as its file asks: an Optuna search (study.search), rounds of seeds until decided
    (study.sequential), or every run once. ``display(runs)`` gives a progress display for each training;
    ``report`` takes the lines a search or rounds say between trainings."""
    if experiment.search is not None:
        from regbench.study.search import search_study

        return search_study(experiment, Trainings(options, backend_choice, display), report)
    if experiment.analysis.max_seeds is not None:
        from regbench.study.sequential import rounds_study

        return rounds_study(experiment, Trainings(options, backend_choice, display), report)
    with display(len(plan(experiment))) as progress:
        return run_experiment(experiment, options, progress=progress, backend_choice=backend_choice)
