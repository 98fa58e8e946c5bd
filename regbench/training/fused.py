"""Several runs of the same MLP shape trained as branches of one Keras model (a fused unit of training).

Small MLPs on MNIST are bound by per-step framework overhead, not arithmetic. K runs fused into one model
pay that overhead once per step instead of K times. Each branch has its own weights (a leading axis of size
K on every kernel and bias), its own L1/L2 penalty, dropout rate, seed (initial weights, batch order, dropout
masks) and early stopping. The loss is the sum of the branch losses, so each branch's gradient is exactly its
own, and Adam's update of a weight depends only on that weight's gradient: every branch trains as it would
alone.

Batch order: each branch sees its own seed's batches (:mod:`regbench.training.batches`), so a fused run is the same
run as alone and the seeds of a unit stay independent. The input carries one slot per distinct seed
(``[batch, slots, ...]``); branches of one seed share their slot, and the first layer multiplies each slot's
batch by all of that slot's branches at once (with one seed, one wide product for every branch).

Dropout masks and noise come from each run's own streams (training.branches.KeyedRandom), as when it trains
alone. What differs from training the runs one by one: the products of a fused model are computed in other
shapes, so numbers agree with the runs alone to float32 rounding (about 1e-7, relative), not bit for bit; and a
branch that stops early keeps training with the others while its weights at the stopping point are kept aside;
its history ends where it stopped. ``loss`` per branch is the running data loss plus the penalty at the
end of the epoch. Which runs can share a model is declared per config field in :mod:`regbench.training.components`
(``fusion_key``): the same data, architecture, batch size, epochs, optimizer and schedule, and no field that
trains alone (batch normalization, gradient clipping, a CNN, augmentation).
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from regbench.config.schema import VariantConfig
from regbench.data.splits import Splits
from regbench.training import components
from regbench.training.batches import BatchOrder, training_input
from regbench.training.branches import BranchDense, SlotsToBranches
from regbench.training.driver import RunSpec
from regbench.training.fusion import fusion_key
from regbench.training.losses import branch_labels, branch_loss
from regbench.training.model import build_model, make_optimizer
from regbench.training.monitor import RunWatch
from regbench.training.results import HISTORY_KEYS, Evaluated, penalty, predict, scores
from regbench.training.saving import branch_as_plain, for_raw_images, model_bytes

__all__ = ["Fused", "build_fused", "fusion_key", "slot_layout"]


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
    input_layers = [layer for c in parts for layer in c.branch_input_layers(cfgs, seeds)]
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
        for layer in (layer for c in parts for layer in c.branch_after_activation(cfgs, i, seeds)):
            x = layer(x)
    outputs = BranchDense(num_classes, activation="softmax", name="output", **dense_kwargs)(x)
    model = keras.Model(inputs, outputs, name=f"fused_{k}")

    params = 0
    kernels: dict[str, list[np.ndarray]] = {}
    biases: dict[str, list[np.ndarray]] = {}
    for cfg, seed in zip(cfgs, seeds, strict=True):
        keras.utils.set_random_seed(seed)
        plain = build_model(cfg, input_shape, num_classes, seed=seed, streams=False)
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
    """Each branch's L1/L2 penalty of its own kernels (``weights``: every layer's [K, in, units])."""
    return [penalty(cfg, {name: w[b] for name, w in weights.items()}) for b, cfg in enumerate(cfgs)]


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


class Fused:
    """K runs of one MLP shape as branches of one model (the :class:`~regbench.training.driver.Strategy` of a
    fused unit), ``specs`` in slot order (:func:`slot_layout`), each branch fed its own seed's batch order. After
    each epoch every branch's row comes from the fused metrics and the penalties of its own weights; a stopped
    branch keeps training with the others while its watch holds the weights it stopped with."""

    def __init__(self, specs: list[RunSpec], slot_seeds: list[int], splits: Splits, shuffle: bool, keep_best: bool):
        cfgs = [s.config for s in specs]
        keys = {fusion_key(c) for c in cfgs}
        if len(keys) != 1 or None in keys:
            raise ValueError("train_fused: branches differ in data, shape, schedule or optimizer, or use batchnorm")
        self.cfgs, self.seeds, self.splits = cfgs, [s.seed for s in specs], splits
        k, cfg0 = len(cfgs), cfgs[0]
        self.model, self.params = build_fused(
            cfgs, self.seeds, splits.x_train.shape[1:], splits.num_classes, slots=len(slot_seeds)
        )
        self.model.compile(
            optimizer=make_optimizer(cfg0),
            loss=branch_loss(cfgs),
            metrics=[BranchMetrics(k)],
            steps_per_execution=cfg0.train.steps_per_execution,
        )
        self.watches = [RunWatch(s.config, splits.num_classes, keep_best, s.on_epoch) for s in specs]
        self.fused = {"branches": k, "batch_orders": len(slot_seeds)}
        self.order = BatchOrder(len(splits.x_train), slot_seeds if shuffle else None, slots=True)
        self.data = training_input(
            self.model, splits.x_train, splits.y_train, cfg0.train.batch_size, self.order, splits.num_classes
        )

    def callbacks(self) -> list[keras.callbacks.Callback]:
        return [self.order, *components.branch_callbacks(self.cfgs)]

    def rows(self, epoch: int, logs: dict[str, Any]):
        logs = {key: np.asarray(value) for key, value in logs.items()}
        kernels, biases = _kernels(self.model), _biases(self.model)
        penalties = _penalties(self.model, self.cfgs, kernels)
        out = []
        for b in range(len(self.cfgs)):
            row = {"epoch": epoch + 1}
            for part in ("data_loss", "accuracy"):
                for prefix in ("", "val_"):
                    values = logs.get(f"{prefix}branches_{part}")
                    row[prefix + part] = math.nan if values is None else float(values[b])
            row["loss"] = row["data_loss"] + penalties[b]
            row["val_loss"] = row["val_data_loss"] + penalties[b]
            if "lr" in logs:
                row["lr"] = float(logs["lr"])
            row = {key: row[key] for key in ("epoch", *HISTORY_KEYS) if key in row}
            out.append((row, lambda b=b: _branch(kernels, biases, b)))
        return out

    def fit_arguments(self) -> dict[str, Any]:
        s = self.splits
        return {"x": self.data, "validation_data": (s.x_val[:, None], s.y_val), "epochs": self.cfgs[0].train.epochs}

    def evaluate(self) -> list[Evaluated]:
        """Put every branch's end weights in place, then evaluate all branches in one pass per set."""
        model, s = self.model, self.splits
        last = _kernels(model), _biases(model)
        ends = [w.end_weights() for w in self.watches]
        self.ends = [_branch(*last, b) if end is None else end for b, end in enumerate(ends)]
        for name in _dense_names(model):
            layer = model.get_layer(name)
            layer.assign_branch_kernels(np.stack([end[0][name] for end in self.ends]))
            layer.bias.assign(np.stack([end[1][name] for end in self.ends]))
        test_p = predict(model, s.x_test[:, None])
        train_p = predict(model, s.x_train[:, None])
        kernels = _kernels(model)
        penalties = _penalties(model, self.cfgs, kernels)
        out = []
        for b in range(len(self.cfgs)):
            test, train = scores(test_p[:, b], s.y_test), scores(train_p[:, b], s.y_train)
            test["loss"] = test["data_loss"] + penalties[b]
            out.append(Evaluated(test, train, {name: kernels[name][b] for name in kernels}, self.params))
        return out

    def saved(self, run: int) -> bytes:
        """Branch ``run`` as the plain model of its variant with its own weights."""
        shape = self.splits.x_train.shape[1:]
        weights = self.watches[run].saved_weights(self.ends[run])
        cfg, seed = self.cfgs[run], self.seeds[run]
        return model_bytes(for_raw_images(branch_as_plain(cfg, seed, shape, self.splits.num_classes, *weights), shape))
