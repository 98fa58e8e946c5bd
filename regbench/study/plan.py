"""TODO."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from regbench.config.schema import Experiment, VariantConfig
from regbench.errors import ConfigError
from regbench.store.identity import run_id
from regbench.store.writer import METRICS, run_dir


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
