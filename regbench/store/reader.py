"""Reading experiment and run folders back, of every format regbench has written (``format`` 1 and 2), for
``compare``, the exports and ``--resume``. A folder that cannot be read is skipped with a reason, never a crash."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from pydantic import ValidationError

from regbench.store.files import YAML_LOADER
from regbench.store.layout import CONFIG, ENVIRONMENT, HISTORY, METRICS
from regbench.store.records import FORMAT_VERSION, RunRecord


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
    runtime: dict[str, str] = field(default_factory=dict)  # backend, versions, batch order (training.results.runtime)

    @property
    def config(self) -> dict[str, Any]:
        return self.metrics.get("config") or {}


@dataclass
class Skipped:
    path: Path
    reason: str
    superseded: bool = False  # the same variant and seed again in a newer folder, which is used instead


def read_history(path: Path) -> list[dict[str, float]]:
    """history.csv as one dict of numbers per epoch. Raises ValueError for a row that is not numbers under the
    header's columns."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for i, row in enumerate(rows, start=2):
        if None in row:
            raise ValueError(f"line {i} has more cells than the header")
    return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in rows]


REFERENCE_METRICS = ("test_error", "test_accuracy")


def _config_problem(config) -> str | None:
    """Why a record's resolved config cannot be read (None when it can): what compare and the report rely on."""
    if config is None:
        return None  # the oldest records have none: the run then counts as the defaults
    if not isinstance(config, dict):
        return f"expected a mapping, got {type(config).__name__}"
    ref = config.get("reference")
    if ref is not None and (
        not isinstance(ref, dict)
        or ref.get("metric") not in REFERENCE_METRICS
        or not isinstance(ref.get("value"), (int, float))
    ):
        return f"reference: expected metric {' or '.join(REFERENCE_METRICS)} and a number, got {json.dumps(ref)[:80]}"
    return None


def refuse_link(path: Path) -> None:
    """Raise ValueError when ``path`` is a symbolic link: a run folder may come from someone else, and a link in
    it could make regbench read, show or upload a file outside it."""
    if path.is_symlink():
        raise ValueError(f"{path.name} is a symbolic link; regbench does not follow links out of a run folder")


def read_text(path: Path) -> str:
    """A file of a run folder as text; a symbolic link is refused (:func:`refuse_link`)."""
    refuse_link(path)
    return path.read_text()


def read_run(folder: Path) -> Run:
    """Read one run folder. Raises ValueError with a reason when it is unfinished or corrupt."""
    metrics_path = folder / METRICS
    if not metrics_path.is_file() and not metrics_path.is_symlink():
        raise ValueError("unfinished run: no metrics.json (interrupted before it completed)")
    try:
        metrics = json.loads(read_text(metrics_path))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"corrupt metrics.json: {exc}") from None
    except RecursionError:
        raise ValueError("corrupt metrics.json: nested too deeply to be a run record") from None
    if not isinstance(metrics, dict) or "variant" not in metrics or "test_accuracy" not in metrics:
        raise ValueError("metrics.json is not a regbench run record (no variant/test_accuracy)")
    version = metrics.get("format")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
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
    problem = _config_problem(metrics.get("config"))
    if problem:
        raise ValueError(f"corrupt metrics.json: config: {problem}")
    history_path = folder / HISTORY
    refuse_link(history_path)
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


def _environment(exp_dir: Path) -> dict:
    """An experiment folder's environment.json as a mapping; {} when it has no readable one."""
    try:
        env = json.loads(read_text(exp_dir / ENVIRONMENT))
    except (OSError, ValueError, RecursionError):
        return {}
    return env if isinstance(env, dict) else {}


def experiment_provenance(exp_dir: Path) -> dict[str, Any] | None:
    """What environment.json says the experiment came from (study.environment.provenance), or None."""
    found = _environment(exp_dir).get("provenance")
    return found if isinstance(found, dict) else None


def experiment_runtime(exp_dir: Path) -> dict[str, str] | None:
    """The runtime an experiment folder's environment.json records (training.results.runtime), or None without one.
    A folder from before it was recorded gets it rebuilt from the versions there: those runs used Keras' own
    shuffle."""
    env = _environment(exp_dir)
    if not env:
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


def _resolved_config(exp_dir: Path) -> dict:
    """An experiment folder's config.yaml as a mapping; {} when it has no readable one."""
    try:
        resolved = yaml.load(read_text(exp_dir / CONFIG), Loader=YAML_LOADER)
    except (OSError, ValueError, yaml.YAMLError):
        return {}
    return resolved if isinstance(resolved, dict) else {}


def experiment_name(exp_dir: Path) -> str | None:
    """The study name an experiment folder's config.yaml records, or None when it has no readable one."""
    name = _resolved_config(exp_dir).get("name")
    return None if name is None else str(name)


class Recorded(NamedTuple):
    """What an experiment folder's config.yaml says about judging its runs; None for what it does not record
    (older folders)."""

    margin: float | None  # analysis.margin
    level: float | None  # analysis.level: the level each verdict is decided at
    test: str | None  # analysis.test: welch or paired
    searched: bool  # a search's folder (config.yaml records a search)


def recorded_analysis(exp_dir: Path) -> Recorded:
    """How an experiment folder's study judges its runs (config.yaml ``analysis`` and ``search``), read once."""
    resolved = _resolved_config(exp_dir)
    analysis = resolved.get("analysis") if isinstance(resolved.get("analysis"), dict) else {}

    def number(key: str, below: float) -> float | None:
        value = analysis.get(key)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < below
        return float(value) if ok else None

    test = analysis.get("test")
    return Recorded(
        number("margin", float("inf")),
        number("level", 0.5),
        test if test in ("welch", "paired") else None,
        isinstance(resolved.get("search"), dict),
    )


def _variant_order(exp_dir: Path) -> list[str]:
    variants = _resolved_config(exp_dir).get("variants")
    return [str(v) for v in variants] if isinstance(variants, dict) else []


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


def finished_record(folder: Path) -> dict[str, Any] | None:
    """The metrics.json of the finished run in ``folder``, or None when there is none or it is unreadable (an
    unfinished or failed run)."""
    try:
        record = json.loads(read_text(folder / METRICS))
    except (OSError, ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def finished_run_id(folder: Path) -> str | None:
    """The run id of the finished run in ``folder``, or None (see :func:`finished_record`)."""
    record = finished_record(folder)
    return None if record is None else str(record.get("run_id"))
