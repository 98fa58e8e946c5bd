"""Train one variant with one seed: callbacks, timing, a single test evaluation, weight statistics."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from regbench import components
from regbench.batches import BatchOrder, training_input
from regbench.config import VariantConfig
from regbench.data import Splits
from regbench.framework import runtime
from regbench.models import build_model, compile_model

# Each variant compiles its own training function; TensorFlow's "retracing" warning about that is noise here.
logging.getLogger("tensorflow").setLevel(logging.ERROR)

EpochHook = Callable[[int, dict[str, float]], None]
NEAR_ZERO = 1e-3
HISTORY_KEYS = ("loss", "data_loss", "accuracy", "val_loss", "val_data_loss", "val_accuracy", "lr")
EVAL_BATCH = 2048
HIST_BINS = 90


class _EpochReporter(keras.callbacks.Callback):
    """Hands each epoch's logs to a plain function (the progress display)."""

    def __init__(self, hook: EpochHook):
        super().__init__()
        self.hook = hook

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.hook(epoch + 1, {k: float(v) for k, v in (logs or {}).items()})


def diverged(loss: float, num_classes: int = 10) -> bool:
    """The divergence rule of both trainers: an epoch's training loss that is NaN, infinite, or above 100 times
    the cross-entropy of a uniform guess over the data's classes."""
    return not math.isfinite(loss) or loss > 100 * math.log(num_classes)


class _DivergenceGuard(keras.callbacks.Callback):
    """Stops training when the epoch's training loss is NaN/inf or far beyond chance (:func:`diverged`; e.g. a
    learning rate of 10 sends Adam's loss to 1e6 before the ReLUs die and it settles at chance). TerminateOnNaN
    catches NaN within an epoch; this catches losses that explode without becoming NaN."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.diverged = False

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if diverged(float((logs or {}).get("loss", math.nan)), self.num_classes):
            self.diverged = True
            self.model.stop_training = True


def monitor_of(cfg: VariantConfig) -> tuple[str, str]:
    """The validation quantity that picks the best epoch, and whether lower ('min') or higher is better."""
    es = cfg.regularization.early_stopping
    monitor = es.monitor if es else "val_data_loss"
    return monitor, ("max" if monitor.endswith("accuracy") else "min")


def best_epoch(history: list[dict[str, float]], monitor: str, mode: str) -> int:
    """1-based epoch with the best monitored value (the first one on ties); NaNs never win."""
    values = [h.get(monitor, math.nan) for h in history]
    finite = [(v if mode == "min" else -v, i) for i, v in enumerate(values) if math.isfinite(v)]
    return min(finite)[1] + 1 if finite else len(history)


def dense_kernels(model: keras.Model) -> dict[str, np.ndarray]:
    """Every Dense and Conv2D layer's kernel as a numpy array, by layer name (``conv_1``, ``dense_1``, ``output``)."""
    return {
        layer.name: np.asarray(keras.ops.convert_to_numpy(layer.kernel))
        for layer in model.layers
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D))
    }


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


def assemble_metrics(
    cfg: VariantConfig,
    seed: int,
    history: list[dict[str, float]],
    *,
    test: dict[str, float],
    train: dict[str, float],
    kernels: dict[str, np.ndarray],
    diverged: bool,
    best: int,
    restored: bool,
    train_time: float,
    params: int,
) -> dict[str, Any]:
    """The metrics.json record of one run (the same for plain and fused training)."""
    monitor, _ = monitor_of(cfg)
    epochs_run = len(history)
    return {
        "seed": seed,
        "status": "diverged" if diverged else "finished",
        "test_accuracy": float(test["accuracy"]),
        "test_data_loss": float(test["data_loss"]),
        "test_loss": float(test["loss"]),
        "train_accuracy": float(train["accuracy"]),
        "train_data_loss": float(train["data_loss"]),
        "generalization_gap": float(train["accuracy"] - test["accuracy"]),
        "monitor": monitor,
        "best_epoch": best,
        "best_monitor_value": history[best - 1].get(monitor) if history else None,
        "epochs_run": epochs_run,
        "stopped_epoch": epochs_run,
        "stopped_early": epochs_run < cfg.train.epochs,
        "restored_best_weights": restored,
        "train_time_s": train_time,
        "params": params,
        "weights": weight_stats(kernels),
        "runtime": runtime(),
    }


def train_run(
    cfg: VariantConfig,
    splits: Splits,
    seed: int,
    on_epoch: EpochHook | None = None,
    shuffle: bool = True,
    kernels_out: dict[str, np.ndarray] | None = None,
) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """Train one variant with one seed and evaluate it.

    The validation split picks the best epoch (and, with early stopping, the weights kept); the test set is
    evaluated once, at the end. The training set is re-evaluated in inference mode (no dropout, batch norm
    with moving statistics), so ``generalization_gap = train_accuracy - test_accuracy`` compares like with like.

    Args:
        cfg: The resolved variant.
        splits: Training, validation and test data.
        seed: Seeds weights, batch order (:func:`regbench.batches.epoch_order`) and dropout masks.
        on_epoch: Called after each epoch with (epoch, logs).
        shuffle: Draw a new batch order each epoch; False keeps the stored order. Defaults to True.
        kernels_out: If given, filled with the final Dense and conv kernels by layer name.

    Returns:
        (metrics, history): ``history`` has one dict per epoch with HISTORY_KEYS.
    """
    keras.utils.set_random_seed(seed)
    model = compile_model(build_model(cfg, splits.x_train.shape[1:], splits.num_classes), cfg)
    monitor, mode = monitor_of(cfg)
    guard = _DivergenceGuard(splits.num_classes)
    order = BatchOrder(
        len(splits.x_train), [seed] if shuffle else None, mixup=(components.mixup(cfg), cfg.train.batch_size)
    )
    callbacks: list[keras.callbacks.Callback] = [order, keras.callbacks.TerminateOnNaN(), guard]
    callbacks += components.callbacks(cfg)
    stopper = next((cb for cb in callbacks if isinstance(cb, keras.callbacks.EarlyStopping)), None)
    if on_epoch is not None:
        callbacks.append(_EpochReporter(on_epoch))

    start = time.perf_counter()
    fit = model.fit(
        training_input(model, splits.x_train, splits.y_train, cfg.train.batch_size, order, splits.num_classes),
        epochs=cfg.train.epochs,
        validation_data=(splits.x_val, components.targets(cfg, splits.y_val, splits.num_classes)),
        validation_batch_size=EVAL_BATCH,  # the same sample means as batch_size, in far fewer steps
        callbacks=callbacks,
        shuffle=False,  # the order is regbench's (BatchOrder), never Keras'
        verbose=0,
    )
    train_time = time.perf_counter() - start
    epochs_run = len(fit.history.get("loss", []))
    history = [
        {"epoch": i + 1, **{k: float(fit.history[k][i]) for k in HISTORY_KEYS if k in fit.history}}
        for i in range(epochs_run)
    ]
    went_off = guard.diverged or any(not math.isfinite(h.get("loss", math.nan)) for h in history)
    if stopper is not None and stopper.best_weights is not None:
        best = stopper.best_epoch + 1  # the epoch whose weights were restored (min_delta and start_from_epoch count)
    else:
        best = best_epoch(history, monitor, mode)
    es = cfg.regularization.early_stopping
    restored = bool(es and es.restore_best_weights and stopper is not None and stopper.best_weights is not None)

    def evaluate(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        labels = components.targets(cfg, y, splits.num_classes)
        return model.evaluate(x, labels, batch_size=EVAL_BATCH, verbose=0, return_dict=True)

    test = evaluate(splits.x_test, splits.y_test)
    train = evaluate(splits.x_train, splits.y_train)
    kernels = dense_kernels(model)
    if kernels_out is not None:
        kernels_out.update(kernels)
    metrics = assemble_metrics(
        cfg,
        seed,
        history,
        test=test,
        train=train,
        kernels=kernels,
        diverged=went_off,
        best=best,
        restored=restored,
        train_time=train_time,
        params=int(model.count_params()),
    )
    return metrics, history
