"""What a trained run reports: the body of metrics.json (results, weight statistics) and its runtime."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from regbench.backend.runtime import framework
from regbench.config.schema import VariantConfig
from regbench.store.records import RunMetrics, Status
from regbench.training.batches import BATCH_ORDER
from regbench.training.monitor import Monitor, RunWatch

NEAR_ZERO = 1e-3


HISTORY_KEYS = ("loss", "data_loss", "accuracy", "val_loss", "val_data_loss", "val_accuracy", "lr")


EVAL_BATCH = 2048


HIST_BINS = 90


def dense_kernels(model: keras.Model) -> dict[str, np.ndarray]:
    """Every Dense and Conv2D layer's kernel as a numpy array, by layer name (``conv_1``, ``dense_1``, ``output``)."""
    return {
        layer.name: np.asarray(keras.ops.convert_to_numpy(layer.kernel))
        for layer in model.layers
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D))
    }


def predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """``model.predict`` in batches of EVAL_BATCH, the last one padded to full size: every set (test, train)
    then runs one compiled program instead of one more per remainder (each a compile of the forward pass).
    Rows are independent in inference (batch normalization uses its moving statistics), so padding changes no
    prediction."""
    n = len(x)
    full = n - n % EVAL_BATCH
    parts = [model.predict(x[:full], batch_size=EVAL_BATCH, verbose=0)] if full else []
    if n > full:
        rest = np.zeros((EVAL_BATCH, *x.shape[1:]), x.dtype)
        rest[: n - full] = x[full:]
        parts.append(model.predict(rest, batch_size=EVAL_BATCH, verbose=0)[: n - full])
    return np.concatenate(parts)


def scores(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy (an exact fraction of the examples) and mean cross-entropy (in float64, probabilities clipped as
    Keras clips them, epsilon 1e-7): computed the same way for runs alone and fused branches."""
    p = np.clip(probs[np.arange(len(labels)), labels].astype(np.float64), 1e-7, 1 - 1e-7)
    return {"accuracy": float((probs.argmax(axis=1) == labels).mean()), "data_loss": float(-np.log(p).mean())}


def penalty(cfg: VariantConfig, kernels: dict[str, np.ndarray]) -> float:
    """The L1/L2 penalty of a run's kernels, as regularization adds it to the loss (l1 sum|w| + l2 sum w^2)."""
    r = cfg.regularization
    total = 0.0
    for kernel in kernels.values():
        w = kernel.astype(np.float64)
        total += r.l1 * np.abs(w).sum() + r.l2 * (w * w).sum()
    return float(total)


def weight_stats(kernels: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per layer: L1 and L2 norm of the kernel, the largest L2 norm of one unit's incoming weights (what max-norm
    bounds), its size, the share of |w| < 1e-3; totals; a histogram."""
    layers = {}
    for name, kernel in kernels.items():
        w = kernel.astype(np.float64)
        units = w.reshape(-1, w.shape[-1])  # one column per unit (Dense) or filter (conv: height*width*in rows)
        layers[name] = {
            "l1_norm": float(np.abs(w).sum()),
            "l2_norm": float(np.sqrt((w * w).sum())),
            "max_unit_norm": float(np.sqrt((units * units).sum(axis=0)).max()),  # largest unit's incoming weights
            "near_zero_share": float((np.abs(w) < NEAR_ZERO).mean()),
            "size": int(w.size),
        }
    total = sum(s["size"] for s in layers.values())
    return {
        "layers": layers,
        "near_zero_share": sum(s["near_zero_share"] * s["size"] for s in layers.values()) / total,
        "l1_norm": sum(s["l1_norm"] for s in layers.values()),
        "l2_norm": math.sqrt(sum(s["l2_norm"] ** 2 for s in layers.values())),
        "near_zero_threshold": NEAR_ZERO,
        "magnitude_histogram": magnitude_histogram(kernels),
    }


def magnitude_histogram(kernels: dict[str, np.ndarray]) -> dict[str, list]:
    """Counts of |w| over every kernel in log-spaced bins from 1e-8 to 10; values below 1e-8 fall in the first
    bin (and are counted apart too). Stored in metrics.json so that reports need no weights."""
    w = np.concatenate([np.abs(k).ravel() for k in kernels.values()])
    edges = np.logspace(-8, 1, HIST_BINS + 1)
    counts, _ = np.histogram(np.clip(w, edges[0], edges[-1]), bins=edges)
    return {
        "edges": [float(e) for e in edges],
        "counts": [int(c) for c in counts],
        "below_first_edge": int((w < edges[0]).sum()),
    }


@dataclass(frozen=True)
class Evaluated:
    """One run's numbers after training, from its trainer: test and training set scores (``accuracy``,
    ``data_loss``, ``loss``), its final kernels by layer name and its parameter count."""

    test: dict[str, float]
    train: dict[str, float]
    kernels: dict[str, np.ndarray]
    params: int


def run_metrics(
    cfg: VariantConfig,
    seed: int,
    watch: RunWatch,
    evaluated: Evaluated,
    *,
    train_time: float,
    resumed_from: int,
    data: dict[str, str],
    run_id: str | None = None,
    fused: dict[str, Any] | None = None,
    device: dict[str, Any] | None = None,
) -> RunMetrics:
    """The metrics.json record of one run (the same for runs alone and fused)."""
    history, test, train = watch.history, evaluated.test, evaluated.train
    monitor = Monitor.of(cfg).name
    best = watch.best_epoch()
    epochs_run = len(history)
    return RunMetrics(
        seed=seed,
        status=Status.DIVERGED if watch.diverged else Status.FINISHED,
        test_accuracy=float(test["accuracy"]),
        test_data_loss=float(test["data_loss"]),
        test_loss=float(test["loss"]),
        train_accuracy=float(train["accuracy"]),
        train_data_loss=float(train["data_loss"]),
        generalization_gap=float(train["accuracy"] - test["accuracy"]),
        monitor=monitor,
        best_epoch=best,
        best_monitor_value=history[best - 1].get(monitor) if history else None,
        epochs_run=epochs_run,
        stopped_epoch=epochs_run,
        stopped_early=epochs_run < cfg.train.epochs,
        restored_best_weights=watch.restored,
        train_time_s=train_time,
        params=evaluated.params,
        weights=weight_stats(evaluated.kernels),
        runtime=runtime(),
        fused=fused,
        resumed_from_epoch=resumed_from or None,
        data=data,
        device=device,
        run_id=run_id,
    )


def runtime() -> dict[str, str]:
    """What trained a run, beyond its config: backend, framework and Keras versions, and the batch-order scheme.
    Part of a run's identity: reports never pool runs of different runtimes."""
    return {**framework(), "batch_order": BATCH_ORDER}
