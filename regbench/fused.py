"""Train several runs of the same MLP shape as branches of one Keras model.

Small MLPs on MNIST are bound by per-step framework overhead, not arithmetic. K runs fused into one model
pay that overhead once per step instead of K times. Each branch has its own weights (a leading axis of size
K on every kernel and bias), its own L1/L2 penalty, dropout rate, seed (initial weights, batch order, dropout
masks) and early stopping. The loss is the sum of the branch losses, so each branch's gradient is exactly its
own, and Adam's update of a weight depends only on that weight's gradient: every branch trains as it would
alone.

Batch order: each branch sees its own seed's batches (:mod:`regbench.batches`), so a fused run is the same
run as alone and the seeds of a group stay independent. The input carries one slot per distinct seed
(``[batch, slots, ...]``); branches of one seed share their slot, and the first layer multiplies each slot's
batch by all of that slot's branches at once (with one seed, one wide product for every branch).

What differs from training the runs one by one: dropout masks (drawn per branch, from other random numbers),
and a branch that stops early keeps training with the others while its weights at the stopping point are kept
aside; its history ends where it stopped. ``loss`` per branch is the running data loss plus the penalty at the
end of the epoch. Fusion needs the same data, hidden_units, activation, batch size, epochs, optimizer and
learning rate, and no batch normalization.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from regbench.batches import BatchOrder, training_input
from regbench.config import VariantConfig
from regbench.data import NUM_CLASSES, Splits
from regbench.framework import loop_steps_in_xla
from regbench.models import build_model, make_optimizer
from regbench.training import DIVERGED_LOSS, EVAL_BATCH, assemble_metrics, best_epoch, monitor_of


def fusion_key(cfg: VariantConfig) -> tuple | None:
    """Runs with equal keys can be fused; None for a config that must train alone (batch normalization)."""
    if cfg.regularization.batchnorm:
        return None
    t, m = cfg.train, cfg.model
    return (
        cfg.data.model_dump_json(),
        tuple(m.hidden_units),
        m.activation,
        t.batch_size,
        t.epochs,
        t.optimizer,
        t.learning_rate,
        t.steps_per_execution,
    )


class BranchDense(keras.layers.Layer):
    """K Dense layers side by side, with per-branch L1/L2 penalties.

    Activations travel as [batch, K, units]. The first layer takes the input as [batch, slots, in]: one slot
    per distinct seed, each holding that seed's batch, and ``K / slots`` branches per slot (branch
    ``b = slot * per_slot + j``). Its kernel is stored as [slots, in, per_slot * units], so each slot's batch
    meets all of its branches in one matrix product; with one slot that is one wide product [batch, in] x
    [in, K*units] for every branch (measured: 12.3 -> 8.2 s per epoch for K=8 with TensorFlow on 2 cores
    against K products). An input with a single slot is shared by every branch (evaluation). Later layers
    hold [K, in, units] kernels and use a batched einsum. (A block-diagonal [K*in, K*units] kernel, one large
    matrix product, was slower on both TensorFlow and JAX, and was dropped.)
    """

    def __init__(
        self,
        units: int,
        l1: list[float],
        l2: list[float],
        activation: str | None = None,
        slots: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units, self.l1, self.l2 = units, list(l1), list(l2)
        self.branches = len(self.l1)
        self.slots = slots  # None: not the first layer (input [batch, K, in])
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        k, n_in, units = self.branches, input_shape[-1], self.units
        if self.slots is not None:
            s = self.slots
            shape = (s, n_in, (k // s) * units)

            def per_branch(values):  # [K] -> [slots, 1, per_slot * units], as the kernel is laid out
                return np.repeat(np.asarray(values, dtype="float32").reshape(s, k // s), units, axis=1)[:, None]

        else:
            shape = (k, n_in, units)

            def per_branch(values):
                return np.asarray(values, dtype="float32").reshape(k, 1, 1)

        penalty = None
        if any(self.l1) or any(self.l2):
            l1, l2 = per_branch(self.l1), per_branch(self.l2)

            def penalty(w):
                return keras.ops.sum(l1 * keras.ops.abs(w)) + keras.ops.sum(l2 * keras.ops.square(w))

        self.kernel = self.add_weight(shape=shape, initializer="zeros", name="kernel", regularizer=penalty)
        self.bias = self.add_weight(shape=(k, self.units), initializer="zeros", name="bias")

    def call(self, x):
        k, units = self.branches, self.units
        if self.slots is None:
            y = keras.ops.einsum("bki,kio->bko", x, self.kernel)
        elif x.shape[1] == 1 or self.slots == 1:  # one batch for every branch
            kernel = keras.ops.reshape(keras.ops.transpose(self.kernel, (1, 0, 2)), (-1, k * units))
            y = keras.ops.matmul(x[:, 0], kernel)
        else:
            y = keras.ops.einsum("bsi,sio->bso", x, self.kernel)
        y = keras.ops.reshape(y, (-1, k, units))
        return self.activation(y + self.bias)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.branches, self.units)

    def branch_kernels(self) -> np.ndarray:
        """The kernels as [K, in, units], whatever the storage layout."""
        w = np.asarray(keras.ops.convert_to_numpy(self.kernel))
        if self.slots is None:
            return w.copy()
        s, n_in, k = self.slots, w.shape[1], self.branches
        return w.reshape(s, n_in, k // s, self.units).transpose(0, 2, 1, 3).reshape(k, n_in, self.units)

    def assign_branch_kernels(self, kernels: np.ndarray) -> None:
        if self.slots is not None:
            k, n_in, units = kernels.shape
            s = self.slots
            kernels = kernels.reshape(s, k // s, n_in, units).transpose(0, 2, 1, 3).reshape(s, n_in, -1)
        self.kernel.assign(kernels)


class BranchDropout(keras.layers.Layer):
    """Dropout with one rate per branch on [batch, K, units]. A rate of 0 leaves its branch untouched, and
    random numbers are drawn only for the branches that drop (measured with JAX: random numbers for all six
    branches of the seed study cost about 10 % of a step)."""

    def __init__(self, rates: list[float], seed: int, **kwargs):
        super().__init__(**kwargs)
        rates = np.asarray(rates, dtype="float32")
        self.dropping = np.flatnonzero(rates > 0)
        # Per branch: its slot among the dropping branches, or the last slot (always kept) for the others.
        slots = np.full(len(rates), len(self.dropping))
        slots[self.dropping] = np.arange(len(self.dropping))
        self.slots = slots
        self.keep = (1.0 - rates)[None, :, None]
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        if not training or not len(self.dropping):
            return x
        shape = keras.ops.shape(x)
        noise = keras.random.uniform((shape[0], len(self.dropping), shape[2]), seed=self.seed_generator)
        kept = noise < self.keep[:, self.dropping]
        if len(self.dropping) < len(self.slots):
            always = keras.ops.ones((shape[0], 1, shape[2]), dtype="bool")
            kept = keras.ops.take(keras.ops.concatenate([kept, always], axis=1), self.slots, axis=1)
        return keras.ops.where(kept, x / self.keep, keras.ops.zeros_like(x))


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
    cfgs: list[VariantConfig], seeds: list[int], input_shape=(28, 28), slots: int = 1
) -> tuple[keras.Model, int]:
    """The fused model, with each branch initialised exactly as the plain model of its (config, seed) would be.

    Its input is [batch, slots, *input_shape] (``slots`` from :func:`slot_layout`; branches in slot order), or
    [batch, 1, *input_shape] for one batch that every branch sees. Returns the model and the plain model's
    parameter count.
    """
    k = len(cfgs)
    hidden = cfgs[0].model.hidden_units
    l1 = [c.regularization.l1 for c in cfgs]
    l2 = [c.regularization.l2 for c in cfgs]
    rates = np.array([c.dropout_rates() for c in cfgs])  # [K, layers]
    inputs = keras.Input(shape=(None, *input_shape))
    x = keras.layers.Reshape((-1, int(np.prod(input_shape))), name="flatten")(inputs)
    for i, units in enumerate(hidden, start=1):
        first = slots if i == 1 else None
        x = BranchDense(units, l1, l2, activation=cfgs[0].model.activation, slots=first, name=f"dense_{i}")(x)
        if rates[:, i - 1].any():
            x = BranchDropout(list(rates[:, i - 1]), seed=seeds[0] + 7919 * i, name=f"dropout_{i}")(x)
    outputs = BranchDense(NUM_CLASSES, l1, l2, activation="softmax", name="output")(x)
    model = keras.Model(inputs, outputs, name=f"fused_{k}")

    params = 0
    kernels: dict[str, list[np.ndarray]] = {}
    biases: dict[str, list[np.ndarray]] = {}
    for cfg, seed in zip(cfgs, seeds, strict=True):
        keras.utils.set_random_seed(seed)
        plain = build_model(cfg, input_shape)
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


def _branch_labels(y_true, branches: int):
    """Labels [batch] (one batch for all) or [batch, slots] -> [batch, K], to score predictions [batch, K, ...]."""
    y = keras.ops.cast(y_true, "int32")
    if len(y.shape) == 1:
        y = keras.ops.reshape(y, (-1, 1))
    return keras.ops.repeat(y, branches // y.shape[1], axis=1)


def _branch_loss(branches: int):
    def loss(y_true, y_pred):
        y = _branch_labels(y_true, branches)
        return keras.ops.sum(keras.losses.sparse_categorical_crossentropy(y, y_pred), axis=1)

    return loss


class BranchMetrics(keras.metrics.Metric):
    """Every branch's accuracy and data loss (cross-entropy), averaged over the epoch's samples, reported as
    ``b<i>_accuracy`` and ``b<i>_data_loss``. One metric with [K] state rather than 2K metrics: the same
    sums, but a step with far fewer ops (measured with JAX, K=6: about 3 s less compiling per run)."""

    def __init__(self, branches: int, name: str = "branches", **kwargs):
        super().__init__(name=name, **kwargs)
        self.branches = branches
        self.correct = self.add_variable(shape=(branches,), initializer="zeros", name="correct")
        self.cross_entropy = self.add_variable(shape=(branches,), initializer="zeros", name="cross_entropy")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y = _branch_labels(y_true, self.branches)
        hits = keras.ops.cast(keras.ops.equal(keras.ops.argmax(y_pred, axis=-1), y), "float32")
        ce = keras.losses.sparse_categorical_crossentropy(y, y_pred)  # [batch, K]
        self.correct.assign_add(keras.ops.sum(hits, axis=0))
        self.cross_entropy.assign_add(keras.ops.sum(ce, axis=0))
        self.count.assign_add(keras.ops.cast(keras.ops.shape(y)[0], "float32"))

    def result(self):
        n = keras.ops.maximum(self.count, 1.0)
        acc, ce = self.correct / n, self.cross_entropy / n
        out = {}
        for b in range(self.branches):
            out[f"b{b}_accuracy"], out[f"b{b}_data_loss"] = acc[b], ce[b]
        return out


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


class _Branches(keras.callbacks.Callback):
    """Per-branch history, early stopping (Keras' EarlyStopping rules), divergence, and weight snapshots."""

    def __init__(self, cfgs: list[VariantConfig], on_epoch: list[Callable | None]):
        super().__init__()
        self.cfgs, self.on_epoch = cfgs, on_epoch
        k = len(cfgs)
        self.history: list[list[dict[str, float]]] = [[] for _ in range(k)]
        self.active = [True] * k
        self.diverged = [False] * k
        self.final: list[tuple[dict, dict] | None] = [None] * k  # (kernels, biases) kept for a stopped branch
        self.best: list[tuple[dict, dict] | None] = [None] * k
        self.best_value = [None] * k
        self.best_epoch = [None] * k
        self.wait = [0] * k

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        kernels, biases = _kernels(self.model), _biases(self.model)
        penalties = _penalties(self.model, self.cfgs, kernels)
        for b, cfg in enumerate(self.cfgs):
            if not self.active[b]:
                continue
            row = {"epoch": epoch + 1}
            for part in ("data_loss", "accuracy"):
                row[part] = float(logs.get(f"b{b}_{part}", math.nan))
                row[f"val_{part}"] = float(logs.get(f"val_b{b}_{part}", math.nan))
            row["loss"] = row["data_loss"] + penalties[b]
            row["val_loss"] = row["val_data_loss"] + penalties[b]
            self.history[b].append(
                {
                    k: row[k]
                    for k in ("epoch", "loss", "data_loss", "accuracy", "val_loss", "val_data_loss", "val_accuracy")
                }
            )
            if self.on_epoch[b] is not None:
                self.on_epoch[b](epoch + 1, row)
            if not math.isfinite(row["loss"]) or row["loss"] > DIVERGED_LOSS:
                self.diverged[b], self.active[b] = True, False
                self.final[b] = (kernels, biases)
                continue
            self._early_stopping(b, cfg, epoch, row, kernels, biases)
        if not any(self.active):
            self.model.stop_training = True

    def _early_stopping(self, b, cfg, epoch, row, kernels, biases) -> None:
        es = cfg.regularization.early_stopping
        if es is None:
            return
        monitor, mode = monitor_of(cfg)
        current = row.get(monitor)
        if current is None or epoch < es.start_from_epoch:
            return
        if es.restore_best_weights and self.best[b] is None:
            self.best[b], self.best_epoch[b] = (kernels, biases), epoch
        self.wait[b] += 1
        ref = self.best_value[b]
        # Keras' rule: an improvement beats the best by more than min_delta.
        improved = ref is None or (current + es.min_delta < ref if mode == "min" else current - es.min_delta > ref)
        if improved:
            self.best_value[b], self.best_epoch[b] = current, epoch
            if es.restore_best_weights:
                self.best[b] = (kernels, biases)
            self.wait[b] = 0
            return
        if self.wait[b] >= es.patience and epoch > 0:
            self.active[b] = False
            self.final[b] = (kernels, biases)

    def weights_of(self, b: int) -> tuple[dict, dict]:
        """The weights a plain run would end with: best (restore_best_weights), at the stop, or the last."""
        es = self.cfgs[b].regularization.early_stopping
        if es is not None and es.restore_best_weights and self.best[b] is not None and not self.diverged[b]:
            return self.best[b]
        if self.final[b] is not None:
            return self.final[b]
        return _kernels(self.model), _biases(self.model)


def train_fused(
    cfgs: list[VariantConfig],
    seeds: list[int],
    splits: Splits,
    on_epoch: list[Callable | None] | None = None,
    shuffle: bool = True,
) -> list[tuple[dict[str, Any], list[dict[str, float]], dict[str, np.ndarray]]]:
    """Train K (config, seed) runs fused; return per branch (metrics, history, final kernels), in input order.

    Args:
        cfgs: One resolved config per branch; all must share :func:`fusion_key`.
        seeds: One seed per branch: initial weights as a plain run with that seed, the batch order of that seed
            (:func:`regbench.batches.epoch_order`), dropout masks.
        splits: The data all branches share.
        on_epoch: Per-branch epoch hooks, or None.
        shuffle: Draw a new batch order each epoch; False keeps the stored order. Defaults to True.
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
    )
    by_input = [None] * len(cfgs)
    for position, b in enumerate(order):
        by_input[b] = results[position]
    return by_input


def _train_fused(cfgs, seeds, slot_seeds, splits, on_epoch, shuffle):
    """train_fused with branches already in slot order."""
    k = len(cfgs)
    model, params = build_fused(cfgs, seeds, splits.x_train.shape[1:], slots=len(slot_seeds))
    cfg0 = cfgs[0]
    model.compile(
        optimizer=make_optimizer(cfg0),
        loss=_branch_loss(k),
        metrics=[BranchMetrics(k)],
        steps_per_execution=cfg0.train.steps_per_execution,
    )
    loop_steps_in_xla(model)
    branches = _Branches(cfgs, on_epoch)
    batch_order = BatchOrder(len(splits.x_train), slot_seeds if shuffle else None, slots=True)
    start = time.perf_counter()
    model.fit(
        training_input(splits.x_train, splits.y_train, cfg0.train.batch_size, batch_order),
        epochs=cfg0.train.epochs,
        validation_data=(splits.x_val[:, None], splits.y_val),
        validation_batch_size=EVAL_BATCH,  # the same sample means as batch_size, in far fewer steps
        callbacks=[batch_order, branches],
        shuffle=False,  # the order is regbench's (BatchOrder), never Keras'
        verbose=0,
    )
    wall = time.perf_counter() - start

    # Put every branch's final weights in place, then evaluate all branches in one pass per set.
    finals = [branches.weights_of(b) for b in range(k)]
    for name in _dense_names(model):
        layer = model.get_layer(name)
        layer.assign_branch_kernels(np.stack([finals[b][0][name][b] for b in range(k)]))
        layer.bias.assign(np.stack([finals[b][1][name][b] for b in range(k)]))
    test_p = model.predict(splits.x_test[:, None], batch_size=EVAL_BATCH, verbose=0)
    train_p = model.predict(splits.x_train[:, None], batch_size=EVAL_BATCH, verbose=0)
    kernels = _kernels(model)
    penalties = _penalties(model, cfgs, kernels)

    results = []
    for b, (cfg, seed) in enumerate(zip(cfgs, seeds, strict=True)):
        test = _scores(test_p[:, b], splits.y_test)
        train = _scores(train_p[:, b], splits.y_train)
        test["loss"] = test["data_loss"] + penalties[b]
        history = branches.history[b]
        es = cfg.regularization.early_stopping
        restored = bool(es and es.restore_best_weights and branches.best[b] is not None and not branches.diverged[b])
        if restored:
            best = branches.best_epoch[b] + 1
        else:
            best = best_epoch(history, *monitor_of(cfg))
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
        results.append((metrics, history, branch_kernels))
    return results


def _scores(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy and mean cross-entropy, clipped as Keras clips (epsilon 1e-7)."""
    p = np.clip(probs[np.arange(len(labels)), labels].astype(np.float64), 1e-7, 1 - 1e-7)
    return {"accuracy": float((probs.argmax(axis=1) == labels).mean()), "data_loss": float(-np.log(p).mean())}
