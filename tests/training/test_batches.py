"""regbench owns the batch order: a run's permutation of the training set is drawn from (seed, epoch) alone,
changes every epoch, and is the one that fit really trains on, on every backend CI can run. (Keras' own
shuffle repeats one permutation every epoch on TensorFlow when a seed is set.) MixUp's blends are drawn here too."""

from __future__ import annotations

import importlib.util
import json

import keras
import numpy as np
import pytest
from conftest import run_in_backend

from regbench.training.batches import BatchOrder, assemble, epoch_order

BACKENDS = [b for b in ("tensorflow", "jax") if importlib.util.find_spec(b) is not None]

# Trains one run with fit (regbench's order, groups of 3 compiled steps, a learning rate halved every epoch),
# then replays it by hand with train_on_batch on the orders epoch_order gives and the scheduled learning rates:
# the kernels must agree. Replaying with the first epoch's
# order twice must not agree (so the check can tell the orders apart), and a second fit gives the same run.
SCRIPT = r"""
import json, sys
import numpy as np
from conftest import synthetic_arrays
from regbench.backend.quiet_import import import_keras
keras = import_keras()
from regbench.training.batches import epoch_order
from regbench.config.loading import load_text
from regbench.data.splits import prepare
from regbench.training.model import build_model, compile_model
from regbench.training.driver import train_run

splits = prepare(synthetic_arrays(n_train=330), validation_split=0.2, seed=0)   # 264 examples: 8 batches + 8
cfg = load_text('''
name: o
model: {hidden_units: [8]}
train: {epochs: 2, batch_size: 32, optimizer: sgd, learning_rate: 0.1, steps_per_execution: 3,
        lr_schedule: {kind: step, every: 1, factor: 0.5}}
''').variants["default"]
seed, n, bs = 5, len(splits.x_train), 32

def fitted():
    return train_run(cfg, splits, seed).kernels["output"]

def replayed(epochs):
    keras.utils.set_random_seed(seed)
    one_step = cfg.model_copy(update={"train": cfg.train.model_copy(update={"steps_per_execution": 1})})
    model = compile_model(build_model(cfg, seed=seed), one_step)
    for i, e in enumerate(epochs):
        model.optimizer.learning_rate.assign(0.1 * 0.5**i)
        order = epoch_order(seed, e, n)
        for i in range(0, n, bs):
            idx = order[i : i + bs]
            model.train_on_batch(splits.x_train[idx], splits.y_train[idx])
    return keras.ops.convert_to_numpy(model.get_layer("output").kernel)

a, b = fitted(), fitted()
print(json.dumps({
    "backend": keras.backend.backend(),
    "repeat_fit": float(np.abs(a - b).max()),
    "own_orders": float(np.abs(a - replayed([0, 1])).max()),
    "first_order_twice": float(np.abs(a - replayed([0, 0])).max()),
}))
"""


def test_mixup_blends_each_example_with_one_of_its_batch_images_and_labels_alike():
    images = np.arange(10 * 2 * 2, dtype="float32").reshape(10, 2, 2)
    labels = np.arange(10) % 3
    order = BatchOrder(10, [7], mixup=(0.4, 4))
    order.on_epoch_begin(2)
    idx, partner, weight = order.items()
    for start in range(0, 10, 4):  # batches of 4, 4 and 2: partners come from the same batch
        assert sorted(partner[start : start + 4]) == sorted(idx[start : start + 4])
    assert not np.array_equal(partner, idx) and ((weight > 0) & (weight < 1)).all()
    x, y = (np.asarray(keras.ops.convert_to_numpy(a)) for a in assemble(images, labels, (idx, partner, weight), 3))
    w = weight[:, None, None]
    np.testing.assert_allclose(x, w * images[idx] + (1 - w) * images[partner], rtol=1e-6)
    hot = np.eye(3)[labels]
    np.testing.assert_allclose(y, weight[:, None] * hot[idx] + (1 - weight[:, None]) * hot[partner], rtol=1e-6)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
    again = BatchOrder(10, [7], mixup=(0.4, 4))
    again.on_epoch_begin(2)
    for a, b in zip(again.items(), (idx, partner, weight), strict=True):  # the same seed and epoch: the same blends
        np.testing.assert_array_equal(a, b)
    again.on_epoch_begin(3)
    assert not np.array_equal(again.items()[2], weight)  # a new epoch: new weights
    assert len(BatchOrder(10, [7]).items()) == 1  # without MixUp: indices only


def test_epoch_order_is_a_new_permutation_each_epoch_and_reproducible():
    first, second = epoch_order(3, 0, 1000), epoch_order(3, 1, 1000)
    assert sorted(first) == list(range(1000))
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, epoch_order(3, 0, 1000))  # the same seed and epoch: the same order
    assert not np.array_equal(first, epoch_order(4, 0, 1000))  # another seed: another order


@pytest.mark.subprocess
@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_trains_on_regbench_order_every_epoch(backend):
    out = json.loads(run_in_backend(SCRIPT, backend))
    assert out["backend"] == backend
    assert out["repeat_fit"] == 0.0, "the same seed must give the same run"
    assert out["own_orders"] < 1e-5, out
    assert out["first_order_twice"] > 1e-3, out
