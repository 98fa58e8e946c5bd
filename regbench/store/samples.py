"""Finished runs with chosen numbers, written by the real writer (no training): for tests and benchmarks of
everything that reads experiment folders (compare, figures, the report, the exports)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from regbench.config.schema import VariantConfig
from regbench.store.records import RunMetrics, TrainedRun
from regbench.store.writer import ExperimentFolder

VERSIONS = {"tensorflow": "2.21.0", "jax": "0.10.2"}


def sample_config(seed: int, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """A variant's resolved config (as JSON) from overrides of the defaults (``{"regularization": {"l2": 1e-4}}``),
    trained on ``seed``."""
    overrides = dict(config or {})
    overrides.setdefault("train", {})
    overrides["train"] = {**overrides["train"], "seeds": [seed]}
    return VariantConfig.model_validate(overrides).model_dump(mode="json")


def sample_metrics(
    seed: int, acc: float, *, sparsity: float = 0.01, backend: str | None = None, epochs: int = 5
) -> RunMetrics:
    """A finished run's metrics with test accuracy ``acc``, and a ``runtime`` of ``backend`` when given (else none:
    a run of the first record format's runtime)."""
    metrics: dict[str, Any] = {
        "seed": seed,
        "status": "finished",
        "test_accuracy": acc,
        "test_data_loss": 0.1,
        "test_loss": 0.1,
        "train_accuracy": min(1.0, acc + 0.02),
        "train_data_loss": 0.05,
        "generalization_gap": 0.02,
        "monitor": "val_data_loss",
        "best_epoch": 3,
        "best_monitor_value": 0.1,
        "epochs_run": epochs,
        "stopped_epoch": epochs,
        "stopped_early": False,
        "restored_best_weights": False,
        "train_time_s": 1.5,
        "params": 100,
        "weights": {
            "layers": {},
            "near_zero_share": sparsity,
            "l1_norm": 1.0,
            "l2_norm": 2.0,
            "magnitude_histogram": {"edges": [1e-8, 1e-3, 1.0], "counts": [int(sparsity * 100), 100]},
        },
    }
    if backend is not None:
        metrics["runtime"] = {
            "backend": backend,
            "framework": f"{backend} {VERSIONS[backend]}",
            "keras": "3.15.1",
            "batch_order": "regbench-1",
        }
    return RunMetrics(**metrics)


def sample_run(
    exp: Path,
    variant: str,
    seed: int,
    acc: float,
    *,
    config: dict[str, Any] | None = None,
    sparsity: float = 0.01,
    backend: str | None = None,
    epochs: int = 5,
) -> Path:
    """Write one finished run into experiment folder ``exp`` (named ``<study>-<date>-<time>``): test accuracy
    ``acc``, the variant's config given as overrides of the defaults (:func:`sample_config`), the metrics of
    :func:`sample_metrics`, and a history of ``epochs`` epochs. Returns the run folder."""
    metrics = sample_metrics(seed, acc, sparsity=sparsity, backend=backend, epochs=epochs)
    history = [
        {
            "epoch": e,
            "loss": 1 / e,
            "data_loss": 1 / e,
            "accuracy": 0.9,
            "val_loss": 1.1 / e,
            "val_data_loss": 1.1 / e,
            "val_accuracy": 0.88,
        }
        for e in range(1, epochs + 1)
    ]
    folder = ExperimentFolder(exp, exp.name.rsplit("-", 2)[0])
    return folder.write_run(variant, sample_config(seed, config), TrainedRun(metrics, history))


def sample_grid(exp: Path, dropouts: list[float], l2s: list[float], seeds: int = 2) -> None:
    """A dropout x l2 sweep as ``regbench run`` names its variants, with accuracies that follow the grid."""
    for d in dropouts:
        for l2 in l2s:
            for seed in range(seeds):
                name = f"dropout={d},l2={l2}" if len(l2s) > 1 else f"dropout={d}"
                config = {"regularization": {"dropout": d, "l2": l2}}
                sample_run(exp, name, seed, 0.97 + d / 100 - l2 + seed / 1000, config=config)
