"""The one writer of experiment folders (file names in :mod:`regbench.store.layout`).

Durability contract: every file is written atomically (a temporary file, then a rename), so a reader sees the
old content or the whole new one. In a run folder ``metrics.json`` is written last: a run folder without it is
unfinished, and ``--resume`` trains it again. ``error.json`` marks a failed run and goes when the run finishes.
A new experiment folder never reuses an existing one.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from regbench.store import layout
from regbench.store.files import YAML_DUMPER, atomic_write, check_no_links, csv_text, read_text_file, write_json
from regbench.store.records import RunRecord, TrainedRun


def new_experiment_dir(out: Path, name: str, now: datetime | None = None) -> Path:
    """Create ``out/<name>-<timestamp>`` (with ``-2``, ``-3``... if taken). Never reuses an existing folder."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    for i in range(1, 1000):
        path = out / (f"{name}-{stamp}" if i == 1 else f"{name}-{stamp}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{out}: could not find a free folder name for {name}-{stamp}")


class ExperimentFolder:
    """Writes one experiment folder: its header (resolved config, environment), and each run as it ends."""

    def __init__(self, path: Path, name: str):
        self.path, self.name = path, name

    @classmethod
    def create(cls, out: Path, name: str) -> ExperimentFolder:
        return cls(new_experiment_dir(out, name), name)

    def run_dir(self, variant: str, seed: int) -> Path:
        return layout.run_dir(self.path, variant, seed)

    def write_config(self, resolved: dict[str, Any]) -> None:
        """config.yaml: the study with every variant resolved (config.loading.resolved_dict)."""
        atomic_write(self.path / layout.CONFIG, yaml.dump(resolved, Dumper=YAML_DUMPER, sort_keys=False))

    def write_header(self, resolved: dict[str, Any], environment: dict[str, Any]) -> None:
        """config.yaml and environment.json. A resumed folder keeps its first environment and lists each later
        session's under ``resumed``."""
        env_path = self.path / layout.ENVIRONMENT
        if env_path.exists() or env_path.is_symlink():
            try:
                first = json.loads(read_text_file(env_path))
                first.setdefault("resumed", []).append(environment)
                environment = first
            except (ValueError, AttributeError):
                pass  # unreadable, a link or no mapping: replaced by this session's (never followed)
        self.write_config(resolved)
        write_json(env_path, environment)

    def write_rounds(self, rounds: list[dict[str, Any]]) -> None:
        """rounds.json: each look of rounds of seeds (its ``seeds`` and the rows it ``decided``), so that every
        later reading of the folder keeps a decided row's verdict (study.sequential)."""
        write_json(self.path / layout.ROUNDS, {"rounds": rounds})

    def write_run(self, variant: str, config: dict[str, Any], run: TrainedRun) -> Path:
        """Write one finished run: history and the saved model first, metrics.json (the completion marker) last,
        then drop an error.json left by an earlier failure. The record is checked as :class:`RunRecord` first, so
        a trainer cannot write a record that readers would misread."""
        record = RunRecord.of(run.metrics, self.name, variant, config)
        folder = self.run_dir(variant, record.seed)
        check_no_links(folder, self.path)  # never write through a link into another folder
        atomic_write(folder / layout.HISTORY, csv_text(run.history))
        if run.model is not None:
            atomic_write(folder / layout.MODEL, run.model)
        write_json(folder / layout.METRICS, record.as_json())
        (folder / layout.ERROR).unlink(missing_ok=True)
        return folder

    def write_error(self, variant: str, seed: int, run_id: str, error: str, traceback: str) -> None:
        """Record a failed run; it trains again on ``--resume``."""
        record = {"run_id": run_id, "seed": seed, "ok": False, "error": error, "traceback": traceback}
        folder = self.run_dir(variant, seed)
        check_no_links(folder, self.path)
        write_json(folder / layout.ERROR, record)
