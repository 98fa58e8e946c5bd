"""The early-stopping rule (training.monitor.Stopper) decides as Keras' EarlyStopping does, epoch by epoch."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

from regbench.config.schema import EarlyStoppingConfig
from regbench.training.monitor import Stopper, best_epoch, diverged


class _Model:
    """What EarlyStopping touches of a model: stop_training and the weights (here: the epoch they are from)."""

    def __init__(self):
        self.stop_training, self.epoch = False, -1

    def get_weights(self):
        return self.epoch

    def set_weights(self, weights):
        self.epoch = weights


def _keras(config: EarlyStoppingConfig, values: list[float]) -> tuple[int, int | None, object]:
    cb = keras.callbacks.EarlyStopping(
        monitor=config.monitor,
        mode="max" if config.monitor.endswith("accuracy") else "min",
        patience=config.patience,
        min_delta=config.min_delta,
        restore_best_weights=config.restore_best_weights,
        start_from_epoch=config.start_from_epoch,
    )
    model = _Model()
    cb.set_model(model)
    cb.on_train_begin()
    epochs = 0
    for epoch, value in enumerate(values):
        model.epoch, epochs = epoch, epoch + 1
        cb.on_epoch_end(epoch, {config.monitor: value})
        if model.stop_training:
            break
    restored = cb.best_weights if config.restore_best_weights else None
    return epochs, cb.best_epoch if restored is not None else None, restored


def _ours(config: EarlyStoppingConfig, values: list[float]) -> tuple[int, int | None, object]:
    rule = Stopper(config)
    epochs = 0
    for epoch, value in enumerate(values):
        epochs = epoch + 1
        if rule.update(epoch, value, lambda epoch=epoch: epoch):
            break
    return epochs, rule.best_epoch if rule.restores else None, rule.best_weights if rule.restores else None


CASES = list(itertools.product(["val_data_loss", "val_accuracy"], [0, 1, 3], [0.0, 0.01], [True, False], [0, 2]))


@pytest.mark.parametrize("monitor, patience, min_delta, restore, start", CASES)
def test_stopper_stops_and_restores_where_keras_does(monitor, patience, min_delta, restore, start):
    config = EarlyStoppingConfig(
        monitor=monitor, patience=patience, min_delta=min_delta, restore_best_weights=restore, start_from_epoch=start
    )
    rng = np.random.default_rng(patience * 7 + start)
    for _ in range(20):
        # values on a float32 grid (as metrics are), with ties and plateaus, going up and down
        values = [float(np.float32(v)) for v in np.round(rng.normal(0.5, 0.05, size=12), 2)]
        assert _ours(config, values) == _keras(config, values), values


def test_the_best_epoch_without_restoring_is_the_first_best_and_nan_never_wins():
    history = [{"val_data_loss": v} for v in (0.5, float("nan"), 0.3, 0.3, 0.4)]
    assert best_epoch(history, "val_data_loss", "min") == 3
    assert best_epoch([{"val_accuracy": v} for v in (0.9, 0.95, 0.95)], "val_accuracy", "max") == 2


def test_divergence_is_nan_inf_or_far_beyond_chance_where_every_backend_gets():
    assert diverged(float("nan"), 1.0) and diverged(1.0, float("inf")) and diverged(5e9, 5e9)
    assert diverged(14.2, 14.2)  # JAX's clipped cross-entropy of a blown-up model: TensorFlow's was 5e9
    assert not diverged(2.3, 2.3) and not diverged(50.0, 2.0)  # a large penalty alone is not divergence
    assert diverged(9.3, 9.3) and not diverged(9.2, 9.2)  # 4 ln 10 = 9.21
    assert diverged(10.1, 10.1, num_classes=100) and not diverged(9.9, 9.9, num_classes=100)  # capped at 10
