"""The one training driver: a unit of work — one run alone, or several runs fused as branches of one model — from
its first epoch (or its checkpoint) to one :class:`Trained` result per run.

The driver owns what every unit does alike: each run's :class:`~regbench.training.monitor.RunWatch` (history,
early stopping, divergence, the best weights kept), checkpoint restore and save, ``fit``, timing, the metrics
record and the saved model. What differs between a model of one run and a fused one is a :class:`Strategy`:
:class:`regbench.training.alone.Alone` or :class:`regbench.training.fused.Fused`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import keras
import numpy as np

from regbench.config.choices import SaveMode
from regbench.config.schema import VariantConfig
from regbench.data.splits import Splits
from regbench.store.records import TrainedRun
from regbench.training.checkpoint import Resumed, Target
from regbench.training.monitor import EpochHook, RunWatch, Snapshot
from regbench.training.results import EVAL_BATCH, Evaluated, run_metrics


@dataclass(frozen=True)
class RunSpec:
    """One run of a unit: its resolved config, its seed, its id (store.identity.run_id) and its epoch hook."""

    config: VariantConfig
    seed: int
    run_id: str | None = None
    on_epoch: EpochHook | None = None


@dataclass(frozen=True)
class Trained(TrainedRun):
    """A trained run (what the writer takes) and its final kernels by layer name (for tests and benchmarks; not
    written)."""

    kernels: dict[str, np.ndarray] = field(default_factory=dict)

    def stored(self) -> TrainedRun:
        """The part that travels back to the driver process and into the run folder."""
        return TrainedRun(self.metrics, self.history, self.model)


Rows = Callable[[int, dict[str, Any]], list[tuple[dict[str, float], Snapshot]]]


class Strategy(Protocol):
    """A unit's model: built and compiled, with its data, and what it tells the driver."""

    model: keras.Model
    watches: list[RunWatch]  # one per run, in the strategy's run order
    fused: dict[str, Any] | None  # metrics.json ``fused`` (without the wall time), None for a run alone

    def callbacks(self) -> list[keras.callbacks.Callback]:
        """The unit's Keras callbacks before its :class:`Watches` (batch order, learning-rate schedule)."""
        ...

    def rows(self, epoch: int, logs: dict[str, Any]) -> list[tuple[dict[str, float], Snapshot]]:
        """Each run's history row of 0-based ``epoch`` and a snapshot of its weights now."""
        ...

    def fit_arguments(self) -> dict[str, Any]:
        """``fit``'s data, validation data and epochs."""
        ...

    def evaluate(self) -> list[Evaluated]:
        """Put each run's end weights in place (RunWatch.end_weights) and score it on the test and training sets."""
        ...

    def saved(self, run: int) -> bytes:
        """The model.keras file of run ``run`` (with RunWatch.saved_weights), after :meth:`evaluate`."""
        ...


class Watches(keras.callbacks.Callback):
    """Feeds every run's row to its watch after each epoch; the unit stops once none of its runs is active. The
    checkpoint keeps their state under ``state_key``."""

    state_key = "runs"

    def __init__(self, watches: list[RunWatch], rows: Rows):
        super().__init__()
        self.watches, self.rows = watches, rows

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        for watch, (row, snapshot) in zip(self.watches, self.rows(epoch, logs or {}), strict=True):
            if watch.active:
                watch.see(epoch, row, snapshot)
        if not any(w.active for w in self.watches):
            self.model.stop_training = True

    def state(self) -> list[dict[str, Any]]:
        return [w.state() for w in self.watches]

    def restore(self, state: list[dict[str, Any]]) -> None:
        for watch, saved in zip(self.watches, state, strict=True):
            watch.restore(saved)


def train_unit(
    specs: list[RunSpec],
    splits: Splits,
    *,
    save: SaveMode = SaveMode.NONE,
    checkpoint: Target | None = None,
    shuffle: bool = True,
    device: dict[str, Any] | None = None,
    fuse: bool | None = None,
) -> list[Trained]:
    """Train one unit and evaluate it: one run alone, or (two or more runs) fused; one result per run, in order.

    The validation split picks each run's best epoch (and, with early stopping, the weights kept); the test set
    is evaluated once, at the end. The training set is re-evaluated in inference mode (no dropout, batch norm
    with moving statistics), so ``generalization_gap = train_accuracy - test_accuracy`` compares like with like.

    Args:
        specs: The runs; two or more must share training.fusion.fusion_key.
        splits: Training, validation and test data.
        save: output.save_model: with ``last`` or ``best`` each result carries its model.keras bytes.
        checkpoint: Where the unit keeps a checkpoint after each epoch (training.checkpoint), and continues from
            the one there when it belongs to these runs.
        shuffle: Draw a new batch order each epoch (training.batches); False keeps the stored order.
        device: Where the unit trains (a Ray task's node and GPUs): recorded with the unit's start and end times.
        fuse: Train the runs as branches of one model; default: when there are two or more.
    """
    began, save = time.time(), SaveMode(save)
    if not (len(specs) > 1 if fuse is None else fuse):
        from regbench.training.alone import Alone

        strategy: Strategy = Alone(specs[0], splits, shuffle, keep_best=save is SaveMode.BEST)
        order = [0]
    else:
        from regbench.training.fused import Fused, slot_layout

        slot_seeds, order = slot_layout([s.seed for s in specs])
        strategy = Fused([specs[b] for b in order], slot_seeds, splits, shuffle, keep_best=save is SaveMode.BEST)
    watches = Watches(strategy.watches, strategy.rows)
    callbacks = [*strategy.callbacks(), watches]
    resumed = Resumed()
    if checkpoint is not None:
        resumed = checkpoint.restore(strategy.model, [watches])
        callbacks.append(checkpoint.callback([watches], resumed))
    fit = strategy.fit_arguments()
    start = time.perf_counter()
    strategy.model.fit(
        fit["x"],
        epochs=fit["epochs"],
        initial_epoch=resumed.initial_epoch(fit["epochs"]),
        validation_data=fit["validation_data"],
        validation_batch_size=EVAL_BATCH,  # the same sample means as batch_size, in far fewer steps
        callbacks=callbacks,
        shuffle=False,  # the order is regbench's (training.batches.BatchOrder), never Keras'
        verbose=0,
    )
    wall = resumed.elapsed + time.perf_counter() - start
    evaluated = strategy.evaluate()
    where = None if device is None else {**device, "task_began": began, "task_ended": time.time()}
    fused = None if strategy.fused is None else {**strategy.fused, "wall_time_s": wall}
    results: list[Trained | None] = [None] * len(specs)
    for position, (b, watch, scores) in enumerate(zip(order, strategy.watches, evaluated, strict=True)):
        spec = specs[b]
        metrics = run_metrics(
            spec.config,
            spec.seed,
            watch,
            scores,
            train_time=wall / len(specs),
            resumed_from=resumed.epochs_done,
            data=splits.identity,
            run_id=spec.run_id,
            fused=fused,
            device=where,
        )
        model = strategy.saved(position) if save is not SaveMode.NONE else None
        results[b] = Trained(metrics, watch.history, model, kernels=scores.kernels)
    return results  # type: ignore[return-value]


def train_run(cfg: VariantConfig, splits: Splits, seed: int, on_epoch: EpochHook | None = None, **kwargs) -> Trained:
    """One run alone (:func:`train_unit` of one run)."""
    return train_unit([RunSpec(cfg, seed, on_epoch=on_epoch)], splits, **kwargs)[0]


def train_fused(
    cfgs: list[VariantConfig], seeds: list[int], splits: Splits, on_epoch: list | None = None, **kwargs
) -> list[Trained]:
    """Several runs fused (:func:`train_unit`), in input order."""
    hooks = on_epoch or [None] * len(cfgs)
    specs = [RunSpec(c, s, on_epoch=h) for c, s, h in zip(cfgs, seeds, hooks, strict=True)]
    return train_unit(specs, splits, fuse=True, **kwargs)
