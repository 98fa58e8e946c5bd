"""Train several runs of the same MLP shape as branches of one Keras model.

Small MLPs on MNIST are bound by per-step framework overhead, not arithmetic. K runs fused into one model
pay that overhead once per step instead of K times. Each branch has its own weights (a leading axis of size
K on every kernel and bias), its own L1/L2 penalty, dropout rate, seed (initial weights, batch order, dropout
masks) and early stopping. The loss is the sum of the branch losses, so each branch's gradient is exactly its
own, and Adam's update of a weight depends only on that weight's gradient: every branch trains as it would
alone.

Batch order: each branch sees its own seed's batches (:mod:`regbench.training.batches`), so a fused run is the same
run as alone and the seeds of a group stay independent. The input carries one slot per distinct seed
(``[batch, slots, ...]``); branches of one seed share their slot, and the first layer multiplies each slot's
batch by all of that slot's branches at once (with one seed, one wide product for every branch).

What differs from training the runs one by one: dropout masks (drawn per branch, from other random numbers),
and a branch that stops early keeps training with the others while its weights at the stopping point are kept
aside; its history ends where it stopped. ``loss`` per branch is the running data loss plus the penalty at the
end of the epoch. Which runs can share a model is declared per config field in :mod:`regbench.training.components`
(``fusion_key``): the same data, architecture, batch size, epochs, optimizer and schedule, and no field that
trains alone (batch normalization, gradient clipping, a CNN, augmentation).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from regbench.config.schema import VariantConfig
from regbench.data.splits import Splits
from regbench.training import components
from regbench.training.batches import BatchOrder, training_input
from regbench.training.branches import BranchDense, SlotsToBranches
from regbench.training.checkpoint import Resumed, Target
from regbench.training.fusion import fusion_key
from regbench.training.losses import branch_labels, branch_loss
from regbench.training.model import build_model, make_optimizer
from regbench.training.monitor import Stopper, chosen_epoch, diverged, monitor_of
from regbench.training.results import EVAL_BATCH, HISTORY_KEYS, assemble_metrics
from regbench.training.saving import branch_as_plain, for_raw_images, model_bytes

__all__ = ["build_fused", "fusion_key", "slot_layout", "train_fused"]


def slot_layout(seeds: list[int]) -> tuple[list[int], list[int]]:
    """How K branches share input slots: (the seed of each slot, the branch order that makes slots contiguous).

    When every distinct seed has the same number of branches, there is one slot per seed and branches are
    ordered seed by seed (stable). Otherwise each branch gets a slot of its own.
    """
    distinct = list(dict.fromkeys(seeds))
    if len({seeds.count(s) for s in distinct}) == 1:
        order = sorted(range(len(seeds)), key=lambda b: distinct.index(seeds[b]))
        return distinct, order
    return list(seeds), list(range(len(seeds)))


def build_fused(
    cfgs: list[VariantConfig], seeds: list[int], input_shape: tuple[int, ...], num_classes: int, slots: int = 1
) -> tuple[keras.Model, int]:
    """The fused model, with each branch initialised exactly as the plain model of its (config, seed) would be.

    Its input is [batch, slots, *input_shape] (``slots`` from :func:`slot_layout`; branches in slot order), or
    [batch, 1, *input_shape] for one batch that every branch sees. Returns the model and the plain model's
    parameter count.
    """
    k = len(cfgs)
    parts = components.COMPONENTS
    dense_kwargs: dict = {}
    for c in parts:
        dense_kwargs.update(c.branch_dense_kwargs(cfgs))
    dense_kwargs.setdefault("l1", [0.0] * k)
    dense_kwargs.setdefault("l2", [0.0] * k)
    inputs = keras.Input(shape=(None, *input_shape))
    x = keras.layers.Reshape((-1, int(np.prod(input_shape))), name="flatten")(inputs)
    first_slots: int | None = slots
    input_layers = [layer for c in parts for layer in c.branch_input_layers(cfgs, seeds[0])]
    if input_layers:  # per-branch layers on the input: every branch gets its own copy of its slot's batch
        x = SlotsToBranches(k, name="slots_to_branches")(x)
        first_slots = None
        for layer in input_layers:
            x = layer(x)
    for i, units in enumerate(cfgs[0].model.hidden_units, start=1):
        activation = cfgs[0].model.activation
        x = BranchDense(
            units, activation=activation, slots=first_slots if i == 1 else None, name=f"dense_{i}", **dense_kwargs
        )(x)
        for layer in (layer for c in parts for layer in c.branch_after_activation(cfgs, i, seeds[0])):
            x = layer(x)
    outputs = BranchDense(num_classes, activation="softmax", name="output", **dense_kwargs)(x)
    model = keras.Model(inputs, outputs, name=f"fused_{k}")

    params = 0
    kernels: dict[str, list[np.ndarray]] = {}
    biases: dict[str, list[np.ndarray]] = {}
    for cfg, seed in zip(cfgs, seeds, strict=True):
        keras.utils.set_random_seed(seed)
        plain = build_model(cfg, input_shape, num_classes, seed=seed)
        params = plain.count_params()
        for layer in plain.layers:
            if isinstance(layer, keras.layers.Dense):
                kernels.setdefault(layer.name, []).append(keras.ops.convert_to_numpy(layer.kernel))
                biases.setdefault(layer.name, []).append(keras.ops.convert_to_numpy(layer.bias))
    for name, branch_kernels in kernels.items():
        fused = model.get_layer(name)
        fused.assign_branch_kernels(np.stack(branch_kernels))
        fused.bias.assign(np.stack(biases[name]))
    keras.utils.set_random_seed(seeds[0])
    return model, params


class BranchMetrics(keras.metrics.Metric):
    """Every branch's accuracy and data loss (cross-entropy), averaged over the epoch's samples, reported as two
    [K] vectors, ``branches_accuracy`` and ``branches_data_loss``. One metric with [K] state rather than 2K
    metrics: the same sums in a step with far fewer ops to compile; vectors rather than 2K scalars, which JAX
    would hand back as one eager op each, every epoch."""

    def __init__(self, branches: int, name: str = "branches", **kwargs):
        super().__init__(name=name, **kwargs)
        self.branches = branches
        self.correct = self.add_variable(shape=(branches,), initializer="zeros", name="correct")
        self.cross_entropy = self.add_variable(shape=(branches,), initializer="zeros", name="cross_entropy")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y = branch_labels(y_true, self.branches)
        hits = keras.ops.cast(keras.ops.equal(keras.ops.argmax(y_pred, axis=-1), y), "float32")
        ce = keras.losses.sparse_categorical_crossentropy(y, y_pred)  # [batch, K]
        self.correct.assign_add(keras.ops.sum(hits, axis=0))
        self.cross_entropy.assign_add(keras.ops.sum(ce, axis=0))
        self.count.assign_add(keras.ops.cast(keras.ops.shape(y)[0], "float32"))

    def result(self):
        n = keras.ops.maximum(self.count, 1.0)
        return {"branches_accuracy": self.correct / n, "branches_data_loss": self.cross_entropy / n}


def _penalties(model: keras.Model, cfgs: list[VariantConfig], weights: dict[str, np.ndarray]) -> list[float]:
    out = []
    for b, cfg in enumerate(cfgs):
        r = cfg.regularization
        total = 0.0
        for name in _dense_names(model):
            w = weights[name][b].astype(np.float64)
            total += r.l1 * np.abs(w).sum() + r.l2 * (w * w).sum()
        out.append(float(total))
    return out


def _dense_names(model: keras.Model) -> list[str]:
    return [layer.name for layer in model.layers if isinstance(layer, BranchDense)]


def _kernels(model: keras.Model) -> dict[str, np.ndarray]:
    """Every fused layer's kernels as [K, in, units]."""
    return {n: model.get_layer(n).branch_kernels() for n in _dense_names(model)}


def _biases(model: keras.Model) -> dict[str, np.ndarray]:
    return {n: keras.ops.convert_to_numpy(model.get_layer(n).bias).copy() for n in _dense_names(model)}


def _branch(kernels: dict[str, np.ndarray], biases: dict[str, np.ndarray], b: int) -> tuple[dict, dict]:
    """Branch ``b``'s own (kernels, biases), copied out of every branch's."""
    return {n: w[b].copy() for n, w in kernels.items()}, {n: w[b].copy() for n, w in biases.items()}


class _Branches(keras.callbacks.Callback):
    """Per-branch history, early stopping and divergence (the rules of :mod:`regbench.training.monitor`, as for
    a run alone), and the weights each branch ends with."""

    def __init__(
        self, cfgs: list[VariantConfig], on_epoch: list[Callable | None], num_classes: int = 10, keep_best: bool = False
    ):
        super().__init__()
        self.cfgs, self.on_epoch, self.num_classes = cfgs, on_epoch, num_classes
        k = len(cfgs)
        # save_model: best: each branch's (kernels, biases) at its best validation epoch, its own slices only
        self.keep_best = keep_best
        self.best: list[tuple[dict, dict] | None] = [None] * k
        self.best_value = [math.inf] * k
        self.history: list[list[dict[str, float]]] = [[] for _ in range(k)]
        self.active = [True] * k
        self.diverged = [False] * k
        self.final: list[tuple[dict, dict] | None] = [None] * k  # a stopped branch's own (kernels, biases)
        self.stoppers = [
            Stopper(c.regularization.early_stopping) if c.regularization.early_stopping else None for c in cfgs
        ]

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = {key: np.asarray(value) for key, value in (logs or {}).items()}
        kernels, biases = _kernels(self.model), _biases(self.model)
        penalties = _penalties(self.model, self.cfgs, kernels)
        for b in range(len(self.cfgs)):
            if not self.active[b]:
                continue
            row = {"epoch": epoch + 1}
            for part in ("data_loss", "accuracy"):
                for prefix in ("", "val_"):
                    values = logs.get(f"{prefix}branches_{part}")
                    row[prefix + part] = math.nan if values is None else float(values[b])
            row["loss"] = row["data_loss"] + penalties[b]
            row["val_loss"] = row["val_data_loss"] + penalties[b]
            if "lr" in logs:
                row["lr"] = float(logs["lr"])
            self.history[b].append({k: row[k] for k in ("epoch", *HISTORY_KEYS) if k in row})
            if self.keep_best:
                monitor, mode = monitor_of(self.cfgs[b])
                value = row.get(monitor, math.nan) * (1.0 if mode == "min" else -1.0)
                if math.isfinite(value) and value < self.best_value[b]:
                    self.best_value[b] = value
                    self.best[b] = _branch(kernels, biases, b)
            if self.on_epoch[b] is not None:
                self.on_epoch[b](epoch + 1, row)
            stopper = self.stoppers[b]
            if diverged(row["loss"], row["data_loss"], self.num_classes):
                self.diverged[b], self.active[b] = True, False
                self.final[b] = _branch(kernels, biases, b)
            elif stopper is not None and stopper.update(
                epoch, row.get(stopper.config.monitor), lambda b=b: _branch(kernels, biases, b)
            ):
                self.active[b] = False
                self.final[b] = _branch(kernels, biases, b)
        if not any(self.active):
            self.model.stop_training = True

    def restored(self, b: int) -> bool:
        """Whether branch ``b`` ends with its best epoch's weights (never after diverging)."""
        stopper = self.stoppers[b]
        return stopper is not None and stopper.restores and not self.diverged[b]

    def weights_of(self, b: int, last: tuple[dict, dict]) -> tuple[dict, dict]:
        """Branch ``b``'s (kernels, biases) a plain run would end with: best (restore_best_weights), at the stop,
        or from ``last`` (every branch's weights now)."""
        if self.restored(b):
            return self.stoppers[b].best_weights
        if self.final[b] is not None:
            return self.final[b]
        return _branch(*last, b)

    KEPT = ("history", "active", "diverged", "final", "best", "best_value")  # with the stoppers' state

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps (training.checkpoint)."""
        stoppers = [s and s.state() for s in self.stoppers]
        return {**{name: getattr(self, name) for name in self.KEPT}, "stoppers": stoppers}

    def restore(self, state: dict[str, Any]) -> None:
        for name in self.KEPT:
            setattr(self, name, state[name])
        for stopper, saved in zip(self.stoppers, state["stoppers"], strict=True):
            if stopper is not None:
                stopper.restore(saved)


def train_fused(
    cfgs: list[VariantConfig],
    seeds: list[int],
    splits: Splits,
    on_epoch: list[Callable | None] | None = None,
    shuffle: bool = True,
    save: str = "none",
    models_out: list | None = None,
    checkpoint: Target | None = None,
) -> list[tuple[dict[str, Any], list[dict[str, float]], dict[str, np.ndarray]]]:
    """Train K (config, seed) runs fused; return per branch (metrics, history, final kernels), in input order.

    Args:
        cfgs: One resolved config per branch; all must share :func:`fusion_key`.
        seeds: One seed per branch: initial weights as a plain run with that seed, the batch order of that seed
            (:func:`regbench.training.batches.epoch_order`), dropout masks.
        splits: The data all branches share.
        on_epoch: Per-branch epoch hooks, or None.
        shuffle: Draw a new batch order each epoch; False keeps the stored order. Defaults to True.
        save: output.save_model; with ``last`` or ``best`` each branch is saved as the plain model of its variant
            and ``models_out`` gets one model.keras (bytes) per branch, in input order.
        checkpoint: Where the group keeps a checkpoint after each epoch (training.checkpoint), and continues from
            the one there, when it belongs to these runs (its identity lists them in input order).
    """
    keys = {fusion_key(c) for c in cfgs}
    if len(keys) != 1 or None in keys:
        raise ValueError("train_fused: branches differ in data, shape, schedule or optimizer, or use batchnorm")
    slot_seeds, order = slot_layout(list(seeds))
    results = _train_fused(
        [cfgs[b] for b in order],
        [seeds[b] for b in order],
        slot_seeds,
        splits,
        [(on_epoch or [None] * len(cfgs))[b] for b in order],
        shuffle,
        save,
        checkpoint,
    )
    by_input = [None] * len(cfgs)
    models: list = [None] * len(cfgs)
    for position, b in enumerate(order):
        by_input[b], models[b] = results[position][:3], results[position][3]
    if models_out is not None and save != "none":
        models_out[:] = models
    return by_input


def _train_fused(cfgs, seeds, slot_seeds, splits, on_epoch, shuffle, save="none", checkpoint=None):
    """train_fused with branches already in slot order; each result also carries the branch's saved model."""
    k = len(cfgs)
    model, params = build_fused(
        cfgs, seeds, splits.x_train.shape[1:], slots=len(slot_seeds), num_classes=splits.num_classes
    )
    cfg0 = cfgs[0]
    model.compile(
        optimizer=make_optimizer(cfg0),
        loss=branch_loss(cfgs),
        metrics=[BranchMetrics(k)],
        steps_per_execution=cfg0.train.steps_per_execution,
    )
    branches = _Branches(cfgs, on_epoch, splits.num_classes, keep_best=save == "best")
    batch_order = BatchOrder(len(splits.x_train), slot_seeds if shuffle else None, slots=True)
    callbacks = [batch_order, *components.branch_callbacks(cfgs), branches]
    data = training_input(model, splits.x_train, splits.y_train, cfg0.train.batch_size, batch_order, splits.num_classes)
    resumed = Resumed()
    if checkpoint is not None:
        resumed = checkpoint.restore(model, {"branches": branches})
        callbacks.append(checkpoint.callback({"branches": branches}, resumed))
    start = time.perf_counter()
    model.fit(
        data,
        epochs=cfg0.train.epochs,
        initial_epoch=resumed.initial_epoch(cfg0.train.epochs),
        validation_data=(splits.x_val[:, None], splits.y_val),
        validation_batch_size=EVAL_BATCH,  # the same sample means as batch_size, in far fewer steps
        callbacks=callbacks,
        shuffle=False,  # the order is regbench's (BatchOrder), never Keras'
        verbose=0,
    )
    wall = resumed.elapsed + time.perf_counter() - start

    # Put every branch's final weights in place, then evaluate all branches in one pass per set.
    last = _kernels(model), _biases(model)
    finals = [branches.weights_of(b, last) for b in range(k)]
    for name in _dense_names(model):
        layer = model.get_layer(name)
        layer.assign_branch_kernels(np.stack([finals[b][0][name] for b in range(k)]))
        layer.bias.assign(np.stack([finals[b][1][name] for b in range(k)]))
    test_p = _predict(model, splits.x_test[:, None])
    train_p = _predict(model, splits.x_train[:, None])
    kernels = _kernels(model)
    penalties = _penalties(model, cfgs, kernels)

    results = []
    for b, (cfg, seed) in enumerate(zip(cfgs, seeds, strict=True)):
        test = _scores(test_p[:, b], splits.y_test)
        train = _scores(train_p[:, b], splits.y_train)
        test["loss"] = test["data_loss"] + penalties[b]
        history = branches.history[b]
        restored = branches.restored(b)
        best = chosen_epoch(history, cfg, branches.stoppers[b], restored)
        branch_kernels = {name: kernels[name][b] for name in kernels}
        metrics = assemble_metrics(
            cfg,
            seed,
            history,
            test=test,
            train=train,
            kernels=branch_kernels,
            diverged=branches.diverged[b],
            best=best,
            restored=restored,
            train_time=wall / k,
            params=params,
        )
        metrics["fused"] = {"branches": k, "batch_orders": len(slot_seeds), "wall_time_s": wall}
        if resumed.epochs_done:
            metrics["resumed_from_epoch"] = resumed.epochs_done
        saved = None
        if save != "none":
            best = branches.best[b] if save == "best" and not restored else None
            weights = best if best is not None else finals[b]
            shape = splits.x_train.shape[1:]
            plain = branch_as_plain(cfg, seed, shape, splits.num_classes, *weights)
            saved = model_bytes(for_raw_images(plain, shape))
        results.append((metrics, history, branch_kernels, saved))
    return results


def _predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """``model.predict`` in batches of EVAL_BATCH, the last one padded to full size: every set (test, train)
    then runs one compiled program instead of one more per remainder (each a compile of the K-branch forward
    pass). Rows are independent (no batch statistics in a fused model), so padding changes no prediction."""
    n = len(x)
    full = n - n % EVAL_BATCH
    parts = [model.predict(x[:full], batch_size=EVAL_BATCH, verbose=0)] if full else []
    if n > full:
        rest = np.zeros((EVAL_BATCH, *x.shape[1:]), x.dtype)
        rest[: n - full] = x[full:]
        parts.append(model.predict(rest, batch_size=EVAL_BATCH, verbose=0)[: n - full])
    return np.concatenate(parts)


def _scores(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy and mean cross-entropy, clipped as Keras clips (epsilon 1e-7)."""
    p = np.clip(probs[np.arange(len(labels)), labels].astype(np.float64), 1e-7, 1 - 1e-7)
    return {"accuracy": float((probs.argmax(axis=1) == labels).mean()), "data_loss": float(-np.log(p).mean())}
