"""TODO."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from regbench.store.files import YAML_DUMPER, atomic_write, csv_text, json_safe, write_json
from regbench.store.records import FORMAT_VERSION, RunRecord

METRICS = "metrics.json"


HISTORY = "history.csv"


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


def run_dir(exp_dir: Path, variant: str, seed: int) -> Path:
    return exp_dir / variant / f"seed-{seed}"


def write_experiment_header(exp_dir: Path, resolved: dict[str, Any], environment: dict[str, Any]) -> None:
    atomic_write(exp_dir / "config.yaml", yaml.dump(resolved, Dumper=YAML_DUMPER, sort_keys=False))
    write_json(exp_dir / "environment.json", environment)


def write_run(
    exp_dir: Path,
    experiment: str,
    variant: str,
    config: dict[str, Any],
    metrics: dict[str, Any],
    history: list[dict[str, float]],
) -> Path:
    """Write one finished run: history first, metrics.json (the completion marker) last. ``metrics`` is checked
    against :class:`RunRecord` first, so a trainer cannot write a record that readers would misread."""
    folder = run_dir(exp_dir, variant, metrics["seed"])
    record = {"format": FORMAT_VERSION, "experiment": experiment, "variant": variant, **metrics, "config": config}
    RunRecord.model_validate(json_safe(record))
    atomic_write(folder / HISTORY, csv_text(history))
    write_json(folder / METRICS, record)
    return folder
