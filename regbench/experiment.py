"""Run a whole study: every variant x seed, written to a new experiment folder, then summarized."""

from __future__ import annotations

import os
import platform
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from regbench import __version__
from regbench.config import Experiment, VariantConfig, resolved_dict
from regbench.report import RUN_COLUMNS, Group, summarize
from regbench.runs import find_runs, new_experiment_dir, write_experiment_header, write_run


class Progress(Protocol):
    """What the training loop tells the display. The CLI provides a rich and a plain implementation."""

    def start_run(self, variant: str, seed: int, epochs: int) -> None: ...

    def epoch(self, epoch: int, logs: dict[str, float]) -> None: ...

    def end_run(self, metrics: dict[str, Any]) -> None: ...


class _Silent:
    def start_run(self, variant: str, seed: int, epochs: int) -> None:
        pass

    def epoch(self, epoch: int, logs: dict[str, float]) -> None:
        pass

    def end_run(self, metrics: dict[str, Any]) -> None:
        pass


@dataclass
class Result:
    path: Path
    groups: list[Group]


def environment() -> dict[str, Any]:
    """Versions, backend, host and devices: what a reader needs to judge the numbers."""
    import keras
    import numpy

    env: dict[str, Any] = {
        "regbench": __version__,
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "numpy": numpy.__version__,
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "command": " ".join(sys.argv),
        "threads": {k: os.environ[k] for k in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS") if k in os.environ},
    }
    if env["backend"] == "tensorflow":
        import tensorflow as tf

        env["tensorflow"] = tf.__version__
        env["gpus"] = [d.name for d in tf.config.list_physical_devices("GPU")]
    elif env["backend"] == "jax":
        import jax

        env["jax"] = jax.__version__
        env["gpus"] = [str(d) for d in jax.devices() if d.platform != "cpu"]
    return env


def _data_key(cfg: VariantConfig, data_dir: str | None) -> tuple:
    d = cfg.data
    return (d.dataset, d.dir or data_dir, d.validation_split, d.train_subset, d.label_noise, d.seed)


def run_experiment(
    experiment: Experiment,
    out: Path = Path("outputs"),
    data_dir: str | None = None,
    progress: Progress | None = None,
) -> Result:
    """Train every variant x seed of ``experiment`` and write its experiment folder.

    Data are loaded before any folder is created, so a missing dataset leaves nothing behind.

    Args:
        experiment: The loaded study.
        out: Parent folder of the new experiment folder. Defaults to ``outputs``.
        data_dir: Data directory for variants whose config sets no ``data.dir``.
        progress: Receives per-run and per-epoch updates.

    Returns:
        The experiment folder and its summarized variants.
    """
    from regbench.data import load_arrays, prepare
    from regbench.framework import import_keras

    import_keras()
    from regbench.training import train_run

    progress = progress or _Silent()
    raw_cache: dict[tuple, tuple[dict, str]] = {}
    splits_cache: dict[tuple, Any] = {}
    for cfg in experiment.variants.values():
        key = _data_key(cfg, data_dir)
        if key not in splits_cache:
            raw_key = (cfg.data.dataset, cfg.data.dir or data_dir)
            if raw_key not in raw_cache:
                raw_cache[raw_key] = load_arrays(*raw_key)
            arrays, source = raw_cache[raw_key]
            splits_cache[key] = prepare(
                arrays,
                validation_split=cfg.data.validation_split,
                train_subset=cfg.data.train_subset,
                label_noise=cfg.data.label_noise,
                seed=cfg.data.seed,
                source=source,
            )
    raw_cache.clear()

    exp_dir = new_experiment_dir(Path(out), experiment.name)
    env = environment()
    env["data_sources"] = sorted({s.source for s in splits_cache.values()})
    write_experiment_header(exp_dir, resolved_dict(experiment), env)
    for variant, cfg in experiment.variants.items():
        splits = splits_cache[_data_key(cfg, data_dir)]
        config = cfg.model_dump(mode="json")
        for seed in cfg.train.seeds:
            progress.start_run(variant, seed, cfg.train.epochs)
            metrics, history = train_run(cfg, splits, seed, on_epoch=progress.epoch)
            write_run(exp_dir, experiment.name, variant, config, metrics, history)
            progress.end_run(metrics)
    groups = write_summary(exp_dir)
    return Result(exp_dir, groups)


def write_summary(exp_dir: Path) -> list[Group]:
    """Read an experiment folder's runs back and write its summaries, figures and report.html."""
    from regbench.publish import baseline_group, write_all

    runs, _ = find_runs([exp_dir])
    groups, _ = summarize(runs)
    base = baseline_group(groups, None)
    with_test = base is not None and len(groups) > 1
    if with_test:
        groups, _ = summarize(runs, base.variant)
    write_all(
        groups,
        exp_dir,
        RUN_COLUMNS + ["stopped_epoch", "sparsity", "weight_l2"],
        with_test=with_test,
        baseline=base.variant if with_test else None,
        title=f"regbench run: {exp_dir.name}",
    )
    return groups
