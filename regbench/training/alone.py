"""Train one variant with one seed: callbacks, timing, a single test evaluation, weight statistics."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from regbench.config.schema import VariantConfig
from regbench.data.splits import Splits
from regbench.training import components, losses
from regbench.training.batches import BatchOrder, training_input
from regbench.training.checkpoint import Resumed, Target
from regbench.training.model import build_model, compile_model
from regbench.training.monitor import chosen_epoch, diverged
from regbench.training.results import EVAL_BATCH, HISTORY_KEYS, assemble_metrics, dense_kernels
from regbench.training.saving import BestWeights, for_raw_images, model_bytes

# Each variant compiles its own training function; TensorFlow's "retracing" warning about that is noise here.
logging.getLogger("tensorflow").setLevel(logging.ERROR)


EpochHook = Callable[[int, dict[str, float]], None]


class _Record(keras.callbacks.Callback):
    """Each epoch's logs as a row of the run's history, handed to a plain function too (the progress display)."""

    def __init__(self, hook: EpochHook | None):
        super().__init__()
        self.hook = hook
        self.rows: list[dict[str, float]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items()}
        self.rows.append({"epoch": epoch + 1, **{k: logs[k] for k in HISTORY_KEYS if k in logs}})
        if self.hook is not None:
            self.hook(epoch + 1, logs)

    def state(self) -> list[dict[str, float]]:
        return self.rows

    def restore(self, rows: list[dict[str, float]]) -> None:
        self.rows = [dict(row) for row in rows]


class _DivergenceGuard(keras.callbacks.Callback):
    """Stops training when the epoch's training loss is NaN/inf or far beyond chance (:func:`diverged`; e.g. a
    learning rate of 10 sends Adam's loss to 1e6 before the ReLUs die). TerminateOnNaN catches NaN within an
    epoch; this catches losses that explode without becoming NaN."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes
        self.diverged = False

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        loss = float(logs.get("loss", math.nan))
        if diverged(loss, float(logs.get("data_loss", loss)), self.num_classes):
            self.diverged = True
            self.model.stop_training = True

    def state(self) -> bool:
        return self.diverged

    def restore(self, state: bool) -> None:
        self.diverged = bool(state)


def train_run(
    cfg: VariantConfig,
    splits: Splits,
    seed: int,
    on_epoch: EpochHook | None = None,
    shuffle: bool = True,
    kernels_out: dict[str, np.ndarray] | None = None,
    save: str = "none",
    model_out: dict[str, Any] | None = None,
    checkpoint: Target | None = None,
) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """Train one variant with one seed and evaluate it.

    The validation split picks the best epoch (and, with early stopping, the weights kept); the test set is
    evaluated once, at the end. The training set is re-evaluated in inference mode (no dropout, batch norm
    with moving statistics), so ``generalization_gap = train_accuracy - test_accuracy`` compares like with like.

    Args:
        cfg: The resolved variant.
        splits: Training, validation and test data.
        seed: Seeds weights, batch order (:func:`regbench.training.batches.epoch_order`) and dropout masks.
        on_epoch: Called after each epoch with (epoch, logs).
        shuffle: Draw a new batch order each epoch; False keeps the stored order. Defaults to True.
        kernels_out: If given, filled with the final Dense and conv kernels by layer name.
        save: output.save_model: with ``last`` or ``best``, ``model_out["model"]`` gets the model.keras bytes
            (training.saving), after the test set was evaluated.
        checkpoint: Where to keep a checkpoint after each epoch (training.checkpoint), and continue from the one
            there, when it belongs to this run.

    Returns:
        (metrics, history): ``history`` has one dict per epoch with HISTORY_KEYS.
    """
    keras.utils.set_random_seed(seed)
    model = compile_model(build_model(cfg, splits.x_train.shape[1:], splits.num_classes, seed=seed), cfg)
    guard = _DivergenceGuard(splits.num_classes)
    order = BatchOrder(
        len(splits.x_train), [seed] if shuffle else None, mixup=(losses.mixup(cfg), cfg.train.batch_size)
    )
    callbacks: list[keras.callbacks.Callback] = [order, keras.callbacks.TerminateOnNaN(), guard]
    callbacks += components.callbacks(cfg)
    stopper = next((cb.rule for cb in callbacks if isinstance(cb, components.StopEarly)), None)
    record = _Record(on_epoch)
    callbacks.append(record)
    best_weights = BestWeights(cfg) if save == "best" else None
    if best_weights is not None:
        callbacks.append(best_weights)
    data = training_input(model, splits.x_train, splits.y_train, cfg.train.batch_size, order, splits.num_classes)
    resumed = Resumed()
    if checkpoint is not None:
        parts = {"history": record, "guard": guard, "stopper": stopper, "best": best_weights}
        parts = {name: part for name, part in parts.items() if part is not None}
        resumed = checkpoint.restore(model, parts)
        callbacks.append(checkpoint.callback(parts, resumed))

    start = time.perf_counter()
    model.fit(
        data,
        epochs=cfg.train.epochs,
        initial_epoch=resumed.initial_epoch(cfg.train.epochs),
        validation_data=(splits.x_val, losses.targets(cfg, splits.y_val, splits.num_classes)),
        validation_batch_size=EVAL_BATCH,  # the same sample means as batch_size, in far fewer steps
        callbacks=callbacks,
        shuffle=False,  # the order is regbench's (BatchOrder), never Keras'
        verbose=0,
    )
    train_time = resumed.elapsed + time.perf_counter() - start
    history = record.rows
    went_off = guard.diverged or any(not math.isfinite(h.get("loss", math.nan)) for h in history)
    restored = stopper is not None and stopper.restores
    best = chosen_epoch(history, cfg, stopper, restored)

    def evaluate(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        labels = losses.targets(cfg, y, splits.num_classes)
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
    if resumed.epochs_done:
        metrics["resumed_from_epoch"] = resumed.epochs_done
    if save != "none" and model_out is not None:
        if best_weights is not None and best_weights.weights is not None and not restored:
            model.set_weights(best_weights.weights)
        model_out["model"] = model_bytes(for_raw_images(model, splits.x_train.shape[1:]))
    return metrics, history
