"""Reading experiment and run folders back, of every format regbench has written (``format`` 1 to 3), as the typed
records of :mod:`regbench.store.records`, for ``compare``, the exports and ``--resume``. A folder that cannot be
read is skipped with a reason, never a crash."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from regbench.store.files import RECORD_BYTES, TABLE_BYTES, YAML_LOADER, check_no_links, read_text_file
from regbench.store.layout import CONFIG, ENVIRONMENT, HISTORY, METRICS, ROUNDS
from regbench.store.records import FORMAT_VERSION, ExperimentRecord, Judging, LegacyRunRecord, RunRecord


@dataclass
class Run:
    """One finished run (variant x seed) read back from disk: its typed record, history and experiment."""

    path: Path
    experiment_dir: Path
    record: RunRecord
    history: list[dict[str, float]] = field(default_factory=list)
    folder: ExperimentRecord = ExperimentRecord()  # what its experiment folder records (find_runs sets it)

    @property
    def experiment(self) -> str:
        return self.record.experiment or self.experiment_dir.name

    @property
    def variant(self) -> str:
        return self.record.variant

    @property
    def seed(self) -> int:
        return self.record.seed

    @property
    def config(self) -> dict[str, Any]:
        return self.record.config or {}

    @property
    def order(self) -> int:
        """The variant's position in its experiment's config.yaml (file order)."""
        return self.folder.order_of(self.variant)

    @property
    def runtime(self) -> dict[str, str]:
        """What trained it (backend, versions, batch order): its record's, else its folder's (older formats)."""
        return self.record.runtime or self.folder.runtime or {"batch_order": "Keras' own shuffle"}


@dataclass
class Skipped:
    path: Path
    reason: str
    superseded: bool = False  # the same variant and seed again in a newer folder, which is used instead


def read_history(path: Path) -> list[dict[str, float]]:
    """history.csv as one dict of numbers per epoch. Raises ValueError for a row that is not numbers under the
    header's columns, or a file that is not a regular one (:func:`regbench.store.files.read_file`)."""
    rows = list(csv.DictReader(io.StringIO(read_text_file(path, TABLE_BYTES), newline="")))
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


def read_text(path: Path) -> str:
    """A record of an experiment folder as text: a regular file, no link, bounded (store.files.read_file)."""
    return read_text_file(path, RECORD_BYTES)


def safe_yaml(text: str) -> Any:
    """YAML as a run folder's config.yaml holds it, read as a study file is: no aliases (a few lines of them
    expand to gigabytes), no nesting beyond what a record has. Raises ValueError."""
    try:
        for event in yaml.parse(text, Loader=YAML_LOADER):
            if isinstance(event, yaml.AliasEvent):
                raise ValueError("YAML aliases (*name) are not in a record regbench writes")
        return yaml.load(text, Loader=YAML_LOADER)
    except RecursionError:
        raise ValueError("nested too deeply to be a record") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"invalid YAML: {getattr(exc, 'problem', exc)}") from None


def _record(folder: Path) -> RunRecord:
    """A run folder's metrics.json as a typed record, whatever format wrote it. Raises ValueError with a reason
    when it is missing, unfinished or corrupt."""
    metrics_path = folder / METRICS
    if not os.path.lexists(metrics_path):
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
    problem = _config_problem(metrics.get("config"))
    if problem:
        raise ValueError(f"corrupt metrics.json: config: {problem}")
    model = RunRecord if version >= 2 else LegacyRunRecord
    try:
        return model.model_validate(
            {**metrics, "experiment": metrics.get("experiment") or "", "config": metrics.get("config") or {}}
        )
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"corrupt metrics.json: {where}: {first['msg']}") from None


def read_run(folder: Path) -> Run:
    """Read one run folder. Raises ValueError with a reason when it is unfinished or corrupt."""
    record = _record(folder)
    history_path = folder / HISTORY
    try:
        history = read_history(history_path) if os.path.lexists(history_path) else []
    except (ValueError, csv.Error) as exc:
        reason = str(exc)
        raise ValueError(reason if reason.startswith(HISTORY) else f"corrupt {HISTORY}: {reason}") from None
    return Run(path=folder, experiment_dir=folder.parent.parent, record=record, history=history)


def _environment(exp_dir: Path) -> dict:
    """An experiment folder's environment.json as a mapping; {} when it has no readable one."""
    try:
        env = json.loads(read_text(exp_dir / ENVIRONMENT))
    except (OSError, ValueError, RecursionError):
        return {}
    return env if isinstance(env, dict) else {}


def _runtime(env: dict) -> dict[str, str] | None:
    """The runtime environment.json records (training.results.runtime), or None without one. A folder from
    before it was recorded gets it rebuilt from the versions there: those runs used Keras' own shuffle."""
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
        resolved = safe_yaml(read_text(exp_dir / CONFIG))
    except (OSError, ValueError):
        return {}
    return resolved if isinstance(resolved, dict) else {}


def _judging(resolved: dict) -> Judging:
    """How a study judges its runs (config.yaml ``analysis`` and ``search``)."""
    analysis = resolved.get("analysis") if isinstance(resolved.get("analysis"), dict) else {}

    def number(key: str, below: float) -> float | None:
        value = analysis.get(key)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < below
        return float(value) if ok else None

    test = analysis.get("test")
    return Judging(
        number("margin", float("inf")),
        number("level", 0.5),
        test if test in ("auto", "welch", "paired") else None,
        isinstance(resolved.get("search"), dict),
        isinstance(analysis.get("max_seeds"), int) and not isinstance(analysis.get("max_seeds"), bool),
    )


def _decided(exp_dir: Path) -> dict[str, tuple[int, ...]]:
    """rounds.json as row label -> the seeds of the look that decided it; {} without a readable one."""
    try:
        rounds = json.loads(read_text(exp_dir / ROUNDS)).get("rounds")
        return {
            str(label): tuple(int(s) for s in look["seeds"]) for look in rounds for label in look.get("decided", [])
        }
    except (OSError, ValueError, RecursionError, AttributeError, TypeError, KeyError):
        return {}


def read_experiment(exp_dir: Path) -> ExperimentRecord:
    """What an experiment folder's config.yaml, environment.json and rounds.json say about its runs (each file
    read once)."""
    resolved, env = _resolved_config(exp_dir), _environment(exp_dir)
    name = resolved.get("name")
    variants = resolved.get("variants")
    provenance = env.get("provenance")
    return ExperimentRecord(
        name=None if name is None else str(name),
        variants=tuple(str(v) for v in variants) if isinstance(variants, dict) else (),
        judging=_judging(resolved),
        runtime=_runtime(env),
        provenance=provenance if isinstance(provenance, dict) else None,
        environment=env,
        decided=_decided(exp_dir),
    )


def find_runs(paths: list[Path]) -> tuple[list[Run], list[Skipped]]:
    """Collect runs from experiment folders, run folders, or any folder above them; each run carries its
    experiment folder's record (read once per folder).

    A folder is a run folder when it holds metrics.json or history.csv (or is named ``seed-N``). Folders
    that are not runs, unfinished runs and corrupt files are returned as skipped, with a reason.
    """
    runs: list[Run] = []
    skipped: list[Skipped] = []
    seen: set[Path] = set()
    folders: dict[Path, ExperimentRecord] = {}
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
                check_no_links(folder, root)  # a linked variant or seed folder could lead anywhere
                run = read_run(folder)
            except ValueError as exc:
                skipped.append(Skipped(folder, str(exc)))
                continue
            if run.experiment_dir not in folders:
                folders[run.experiment_dir] = read_experiment(run.experiment_dir)
            run.folder = folders[run.experiment_dir]
            runs.append(run)
    return runs, skipped


def finished_record(folder: Path) -> RunRecord | None:
    """The record of the finished run in ``folder``, or None when there is none or it is unreadable (an
    unfinished or failed run)."""
    try:
        return _record(folder)
    except (OSError, ValueError):
        return None


def finished_run_id(folder: Path) -> str | None:
    """The run id of the finished run in ``folder``, or None (see :func:`finished_record`; a record without an
    id, of the first releases, has None too)."""
    record = finished_record(folder)
    return None if record is None else record.run_id
