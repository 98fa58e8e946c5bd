"""The plan of a study: every (variant, seed) run, and which of them a resumed folder already holds."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from regbench.config.schema import Experiment, VariantConfig
from regbench.errors import ConfigError, RegbenchError
from regbench.store.identity import run_id
from regbench.store.layout import run_dir
from regbench.store.reader import finished_record, finished_run_id, read_experiment


class RunState(enum.Enum):
    PLANNED = "planned"  # nothing on disk yet
    FINISHED = "finished"  # a complete run of this id is on disk: skipped
    STALE = "stale"  # an unfinished or failed run is on disk: it runs again


@dataclass
class PlannedRun:
    variant: str
    seed: int
    config: VariantConfig
    run_id: str
    state: RunState = RunState.PLANNED

    @property
    def key(self) -> str:
        return f"{self.variant}/seed-{self.seed}"


def plan(experiment: Experiment, seeds: list[int] | None = None) -> list[PlannedRun]:
    """Every (variant, seed) of the experiment, in file order."""
    return [
        PlannedRun(name, seed, cfg, run_id(cfg.model_dump(mode="json"), seed))
        for name, cfg in experiment.variants.items()
        for seed in (seeds if seeds is not None else cfg.train.seeds)
    ]


def mark_done(runs: list[PlannedRun], exp_dir: Path) -> None:
    """Mark runs whose folder in ``exp_dir`` holds a complete metrics.json of the same run id as finished, and
    those with an unfinished or failed run there as stale.

    Raises:
        ConfigError: when a folder holds a finished run of a *different* config (the study file changed).
    """
    conflicts = []
    for run in runs:
        folder = run_dir(exp_dir, run.variant, run.seed)
        found = finished_run_id(folder)
        if found is None:
            run.state = RunState.STALE if folder.exists() else RunState.PLANNED
        elif found == run.run_id:
            run.state = RunState.FINISHED
        else:
            conflicts.append(
                f"{folder}: holds run {found} of another config than this study's "
                f"{run.run_id}; resume with the config the experiment was started with, or start a new one"
            )
    if conflicts:
        raise ConfigError(conflicts)


def check_resumable(exp_dir: Path, experiment: Experiment) -> None:
    """Raise RegbenchError (exit 2) unless ``exp_dir`` is an experiment folder of this study with no symbolic
    link where regbench reads or writes (its files, variant and seed folders, checkpoints, search.db)."""
    from regbench.store.layout import CHECKPOINTS, CONFIG, ENVIRONMENT, ROUNDS, SEARCH_DATABASE, variant_folder

    places = [exp_dir / n for n in (CONFIG, ENVIRONMENT, ROUNDS, SEARCH_DATABASE, CHECKPOINTS)]
    for name, cfg in experiment.variants.items():
        places.append(exp_dir / variant_folder(name))
        places += [exp_dir / variant_folder(name) / f"seed-{s}" for s in cfg.train.seeds]
    linked = [p for p in places if p.is_symlink()]
    if linked:
        raise RegbenchError(
            [
                f"--resume {exp_dir}: {p.relative_to(exp_dir)} is a symbolic link; regbench reads and writes only "
                "inside the folder: remove the link, or start a new experiment (without --resume)"
                for p in linked
            ],
            exit_code=2,
        )
    recorded = read_experiment(exp_dir).name
    if recorded is None:
        raise RegbenchError(f"--resume {exp_dir}: not an experiment folder (no readable config.yaml)", exit_code=2)
    if recorded != experiment.name:
        raise RegbenchError(
            f"--resume {exp_dir}: holds study {recorded!r}, not {experiment.name!r}; resume it with the study file "
            "it was started with, or start a new experiment (without --resume)",
            exit_code=2,
        )


def check_same_data(runs: list[PlannedRun], exp_dir: Path, identity_of: Callable[[PlannedRun], dict[str, str]]) -> None:
    """Refuse to resume when a finished run of ``exp_dir`` trained on other data than this session would load
    for it (another content hash): its numbers and the new runs' would not be comparable. Runs written before
    the data were recorded are taken as they are.

    Raises:
        ConfigError: listing each such run, its data and this session's.
    """
    conflicts = []
    for run in runs:
        if run.state is not RunState.FINISHED:
            continue
        folder = run_dir(exp_dir, run.variant, run.seed)
        record = finished_record(folder)
        recorded = None if record is None else record.data
        if recorded is None or not recorded.sha256:
            continue
        now = identity_of(run)
        if recorded.sha256 != now["sha256"]:
            conflicts.append(
                f"{folder}: trained on other data (sha256 {recorded.sha256[:12]} from "
                f"{recorded.source}) than this session loads (sha256 {now['sha256'][:12]} from "
                f"{now['source']}); resume with the same data (data.dir, --data-dir, REGBENCH_DATA_DIR) or start a "
                "new experiment"
            )
    if conflicts:
        raise ConfigError(conflicts)
