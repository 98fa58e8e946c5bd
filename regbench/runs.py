"""The run-folder format: the one contract between training and reporting.

An experiment folder ``outputs/<name>-<YYYYmmdd-HHMMSS>/`` holds::

    config.yaml        the study, every variant fully resolved
    environment.json   versions, backend, host, CPU/GPU, command line
    summary.csv        one row per variant (mean/std over seeds)
    summary.md         the same as a Markdown table
    loss.png           data loss per epoch, all variants, train solid, validation dashed
    accuracy.png       accuracy per epoch, likewise
    <variant>/seed-<seed>/history.csv    one row per epoch
    <variant>/seed-<seed>/metrics.json   test/train results, epochs, time, weight statistics, resolved config

Every file is written atomically (temp file + rename). ``metrics.json`` is written last in a run folder: a
run folder without it is unfinished.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError


class RunMetrics(BaseModel):
    """What a trainer reports for one run: the body of metrics.json. Both trainers (plain and fused) build it
    with training.assemble_metrics; unknown extra keys are kept, so a newer writer's additions survive."""

    model_config = ConfigDict(extra="allow")

    seed: int
    status: str  # finished | diverged
    test_accuracy: float | None  # None: NaN (a diverged run)
    test_data_loss: float | None
    test_loss: float | None
    train_accuracy: float | None
    train_data_loss: float | None
    generalization_gap: float | None
    monitor: str
    best_epoch: int
    best_monitor_value: float | None = None
    epochs_run: int
    stopped_epoch: int
    stopped_early: bool
    restored_best_weights: bool
    train_time_s: float
    params: int
    weights: dict[str, Any]
    runtime: dict[str, str] = {}  # framework.runtime(): backend, versions, batch order (format 2)
    fused: dict[str, Any] | None = None  # set when trained as a branch of a fused model


class RunRecord(RunMetrics):
    """metrics.json as written: the run's metrics plus its study, variant, resolved config and format version."""

    format: int
    experiment: str
    variant: str
    run_id: str | None = None
    config: dict[str, Any]

FORMAT_VERSION = 2  # 2: runtime (backend, versions, batch order), lr in history.csv, max_unit_norm
METRICS = "metrics.json"
HISTORY = "history.csv"
# libyaml's safe loader and dumper where PyYAML has them: the same documents, about 6x faster on a 16-variant
# sweep's resolved config (read back by every compare), and PyYAML's own otherwise.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write a file so that readers see either the old content or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def json_safe(obj: Any) -> Any:
    """NaN and infinities become null, so the file is strict JSON that every tool parses."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n")


def csv_text(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:  # NaN (e.g. the std of a single seed) becomes an empty cell, which every CSV reader takes
        writer.writerow({k: "" if isinstance(v, float) and v != v else v for k, v in row.items()})
    return buf.getvalue()


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
    atomic_write(exp_dir / "config.yaml", yaml.dump(resolved, Dumper=_DUMPER, sort_keys=False))
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


# ---------------------------------------------------------------------------------------------------------
# Reading


@dataclass
class Run:
    """One finished run (variant x seed) read back from disk."""

    path: Path
    experiment: str
    experiment_dir: Path
    variant: str
    seed: int
    metrics: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    order: int = 0  # the variant's position in its experiment's config.yaml (file order)
    runtime: dict[str, str] = field(default_factory=dict)  # backend, versions, batch order (framework.runtime)

    @property
    def config(self) -> dict[str, Any]:
        return self.metrics.get("config", {})


@dataclass
class Skipped:
    path: Path
    reason: str
    superseded: bool = False  # the same variant and seed again in a newer folder, which is used instead


def read_history(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as fh:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(fh)]


def read_run(folder: Path) -> Run:
    """Read one run folder. Raises ValueError with a reason when it is unfinished or corrupt."""
    metrics_path = folder / METRICS
    if not metrics_path.is_file():
        raise ValueError("unfinished run: no metrics.json (interrupted before it completed)")
    try:
        metrics = json.loads(metrics_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"corrupt metrics.json: {exc}") from None
    if not isinstance(metrics, dict) or "variant" not in metrics or "test_accuracy" not in metrics:
        raise ValueError("metrics.json is not a regbench run record (no variant/test_accuracy)")
    version = metrics.get("format")
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"metrics.json has no known format version (format: {json.dumps(version)})")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"metrics.json is format {version}, written by a newer regbench than this one (reads formats up to "
            f"{FORMAT_VERSION}); upgrade regbench to read it"
        )
    if version >= 2:
        try:
            RunRecord.model_validate(metrics)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"corrupt metrics.json: {where}: {first['msg']}") from None
    history_path = folder / HISTORY
    try:
        history = read_history(history_path) if history_path.is_file() else []
    except (ValueError, csv.Error) as exc:
        raise ValueError(f"corrupt history.csv: {exc}") from None
    exp_dir = folder.parent.parent
    return Run(
        path=folder,
        experiment=str(metrics.get("experiment") or exp_dir.name),
        experiment_dir=exp_dir,
        variant=str(metrics["variant"]),
        seed=int(metrics.get("seed", 0)),
        metrics=metrics,
        history=history,
    )


def experiment_runtime(exp_dir: Path) -> dict[str, str] | None:
    """The runtime an experiment folder's environment.json records (framework.runtime), or None without one.
    A folder from before it was recorded gets it rebuilt from the versions there: those runs used Keras' own
    shuffle."""
    try:
        env = json.loads((exp_dir / "environment.json").read_text())
    except (OSError, ValueError):
        return None
    if isinstance(env.get("runtime"), dict):
        return env["runtime"]
    backend = str(env.get("backend", "?"))
    return {
        "backend": backend,
        "framework": f"{backend} {env.get(backend, '?')}",
        "keras": str(env.get("keras", "?")),
        "batch_order": "Keras' own shuffle",
    }


def _variant_order(exp_dir: Path) -> list[str]:
    try:
        resolved = yaml.load((exp_dir / "config.yaml").read_text(), Loader=_LOADER)
        return [str(v) for v in resolved.get("variants", {})]
    except (OSError, yaml.YAMLError, AttributeError):
        return []


def find_runs(paths: list[Path]) -> tuple[list[Run], list[Skipped]]:
    """Collect runs from experiment folders, run folders, or any folder above them.

    A folder is a run folder when it holds metrics.json or history.csv (or is named ``seed-N``). Folders
    that are not runs, unfinished runs and corrupt files are returned as skipped, with a reason.
    """
    runs: list[Run] = []
    skipped: list[Skipped] = []
    seen: set[Path] = set()
    orders: dict[Path, list[str]] = {}
    runtimes: dict[Path, dict[str, str]] = {}
    for root in paths:
        if not root.exists():
            skipped.append(Skipped(root, "no such file or folder"))
            continue
        if not root.is_dir():
            skipped.append(Skipped(root, "not a folder"))
            continue
        candidates = sorted(
            {p.parent for p in root.rglob(METRICS)}
            | {p.parent for p in root.rglob(HISTORY)}
            | {p for p in root.rglob("seed-*") if p.is_dir()}
            | ({root} if root.name.startswith("seed-") else set())
        )
        if not candidates:
            skipped.append(Skipped(root, "no run folders (no metrics.json) inside"))
            continue
        for folder in candidates:
            key = folder.resolve()
            if key in seen:
                continue
            seen.add(key)
            try:
                run = read_run(folder)
            except ValueError as exc:
                skipped.append(Skipped(folder, str(exc)))
                continue
            if run.experiment_dir not in orders:
                orders[run.experiment_dir] = _variant_order(run.experiment_dir)
            names = orders[run.experiment_dir]
            run.order = names.index(run.variant) if run.variant in names else len(names)
            if isinstance(run.metrics.get("runtime"), dict):
                run.runtime = run.metrics["runtime"]
            else:
                if run.experiment_dir not in runtimes:
                    recorded = experiment_runtime(run.experiment_dir)
                    runtimes[run.experiment_dir] = recorded or {"batch_order": "Keras' own shuffle"}
                run.runtime = runtimes[run.experiment_dir]
            runs.append(run)
    return runs, skipped
