"""Every file and folder a regbench experiment folder holds, by name: the one list readers and writers use.

An experiment folder ``<out>/<study>-<YYYYmmdd-HHMMSS>/`` holds::

    config.yaml          the study, every variant fully resolved           (ExperimentFolder.write_header)
    environment.json     versions, backend, host, devices, settings        (ExperimentFolder.write_header)
    <variant>/seed-<s>/history.csv     one row per epoch                   (ExperimentFolder.write_run)
                         (a variant name too long for a file name is shortened: variant_folder)
    <variant>/seed-<s>/metrics.json    results, weights, config; last      (ExperimentFolder.write_run)
    <variant>/seed-<s>/error.json      a failed run's error and traceback  (ExperimentFolder.write_error)
    <variant>/seed-<s>/model.keras     with output.save_model              (ExperimentFolder.write_run)
    <variant>/seed-<s>/tensorboard/    with --tensorboard                  (output.tensorboard)
    summary.md, summary.csv, summary.json, report.html and the figures     (output.publish.write_all)
    search.db and search_*.png       a search's Optuna study and figures  (study.search)
    rounds.json                      rounds of seeds: what each look decided (ExperimentFolder.write_rounds)
    .checkpoints/<hash>.npz          unfinished training's last epoch    (store.checkpoints)

``run --backends`` writes ``<out>/<study>-backends-<timestamp>/<backend>/`` (one experiment folder each) and
``agreement.md`` beside them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CONFIG = "config.yaml"
ENVIRONMENT = "environment.json"
METRICS = "metrics.json"
HISTORY = "history.csv"
ERROR = "error.json"
MODEL = "model.keras"
SEARCH_DATABASE = "search.db"  # a search's Optuna study (study.search)
SEARCH_HISTORY, SEARCH_PARALLEL, SEARCH_IMPORTANCE = (
    "search_history.png",
    "search_parallel.png",
    "search_importance.png",
)
TENSORBOARD = "tensorboard"
CHECKPOINTS = ".checkpoints"  # a dot: never a variant's folder (names start with a letter or digit)
SUMMARY_MD, SUMMARY_CSV, SUMMARY_JSON = "summary.md", "summary.csv", "summary.json"
REPORT = "report.html"
ROUNDS = "rounds.json"  # rounds of seeds: each look's seeds and the rows it decided (study.sequential)
AGREEMENT = "agreement.md"


MAX_NAME_BYTES = 255  # the longest file name ext4, XFS, Btrfs, APFS and NTFS all take


def variant_folder(variant: str) -> str:
    """A variant's folder name: the name itself, or, when longer than a file system takes (a long sweep label),
    its first 200 characters, ``~`` and 16 hex digits of its sha256. ``~`` is never in a variant name, so a
    shortened name cannot meet a written one; the full name stays in metrics.json and config.yaml."""
    if len(variant.encode()) <= MAX_NAME_BYTES:
        return variant
    return f"{variant[:200]}~{hashlib.sha256(variant.encode()).hexdigest()[:16]}"


def run_dir(exp_dir: Path, variant: str, seed: int) -> Path:
    """The folder of one (variant, seed) run inside an experiment folder."""
    return exp_dir / variant_folder(variant) / f"seed-{seed}"
