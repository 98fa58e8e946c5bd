"""One Monitor decides "which epoch is best" for early stopping, best-epoch choice and save_model: best, and the
early-stopping rule (training.monitor.Stopper) decides as Keras' EarlyStopping does, epoch by epoch; a run's
watch (RunWatch) applies them alike alone and fused."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest

from regbench.config.schema import EarlyStoppingConfig, VariantConfig
from regbench.training.monitor import Direction, KeptBest, Monitor, RunWatch, Stopper, diverged


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
    assert Monitor("val_data_loss").best_epoch(history) == 3
    assert Monitor("val_accuracy").best_epoch([{"val_accuracy": v} for v in (0.9, 0.95, 0.95)]) == 2
    assert Monitor("val_data_loss").best_epoch([]) == 0  # no epoch at all
    assert Monitor("val_data_loss").best_epoch([{"val_data_loss": float("nan")}] * 3) == 3  # all NaN: the last


def test_one_monitor_says_which_way_is_better_and_by_how_much():
    loss, accuracy = Monitor("val_loss", min_delta=0.01), Monitor("val_accuracy", min_delta=0.01)
    assert (loss.direction, accuracy.direction) == (Direction.MIN, Direction.MAX)
    assert loss.is_improvement(0.5, None) and accuracy.is_improvement(0.5, None)
    assert loss.is_improvement(0.48, 0.5) and not loss.is_improvement(0.495, 0.5)
    assert accuracy.is_improvement(0.52, 0.5) and not accuracy.is_improvement(0.505, 0.5)
    kept = KeptBest(Monitor("val_accuracy"))
    for epoch, value in enumerate((0.8, float("nan"), 0.9, 0.9, 0.85)):
        kept.offer(value, lambda epoch=epoch: epoch)
    assert (kept.value, kept.weights) == (0.9, 2)  # the first best; NaN never taken


def _watch(yaml_es: dict | None, keep_best: bool = False) -> RunWatch:
    cfg = VariantConfig.model_validate({"regularization": {"early_stopping": yaml_es}})
    return RunWatch(cfg, num_classes=10, keep_best=keep_best)


def test_a_watch_stops_on_early_stopping_and_ends_with_the_best_epochs_weights():
    watch = _watch({"patience": 1}, keep_best=True)
    stopped = [
        watch.see(e, {"loss": 1.0, "data_loss": 1.0, "val_data_loss": v}, lambda e=e: e)
        for e, v in enumerate((0.5, 0.4, 0.45))
    ]
    assert stopped == [False, False, True] and not watch.active
    assert watch.restored and watch.end_weights() == 1 and watch.best_epoch() == 2
    assert watch.saved_weights("end") == "end"  # restored: the model ends with the best weights already
    again = _watch({"patience": 1}, keep_best=True)
    again.restore(watch.state())
    assert again.state() == watch.state()


def test_a_diverged_run_stops_at_once_and_never_ends_with_restored_weights():
    watch = _watch({"patience": 5})
    watch.see(0, {"loss": 0.5, "data_loss": 0.5, "val_data_loss": 0.5}, lambda: "first")
    assert watch.see(1, {"loss": float("nan"), "data_loss": 3.0, "val_data_loss": 0.1}, lambda: "blown up")
    assert watch.diverged and not watch.restored and watch.end_weights() == "blown up"
    assert watch.stopper.best == 0.5  # early stopping was not asked on the epoch that diverged


def test_divergence_is_nan_inf_or_far_beyond_chance_where_every_backend_gets():
    assert diverged(float("nan"), 1.0) and diverged(1.0, float("inf")) and diverged(5e9, 5e9)
    assert diverged(14.2, 14.2)  # JAX's clipped cross-entropy of a blown-up model: TensorFlow's was 5e9
    assert not diverged(2.3, 2.3) and not diverged(50.0, 2.0)  # a large penalty alone is not divergence
    assert diverged(9.3, 9.3) and not diverged(9.2, 9.2)  # 4 ln 10 = 9.21
    assert diverged(10.1, 10.1, num_classes=100) and not diverged(9.9, 9.9, num_classes=100)  # capped at 10
