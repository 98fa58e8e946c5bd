"""One training run: metrics recorded, early stopping, repeatability with a seed."""

from __future__ import annotations

import pytest
from conftest import synthetic_arrays

from regbench.config.loading import load_text
from regbench.data.splits import prepare
from regbench.training.driver import train_run
from regbench.training.monitor import Monitor


@pytest.fixture(scope="module")
def splits():
    return prepare(synthetic_arrays(n_train=320), validation_split=0.2, seed=0)


def variant(body: str):
    return load_text("name: t\nmodel: {hidden_units: [16, 8]}\n" + body).variants["default"]


def test_same_seed_same_result(splits):
    cfg = variant("train: {epochs: 2, batch_size: 32}\n")
    a, b = train_run(cfg, splits, seed=3), train_run(cfg, splits, seed=3)
    assert a.metrics.test_accuracy == b.metrics.test_accuracy
    assert a.history == b.history


def test_synthetic_task_is_learned(splits):
    run = train_run(variant("train: {epochs: 8, batch_size: 16, learning_rate: 0.003}\n"), splits, seed=0)
    assert run.metrics.test_accuracy > 0.5, "the synthetic task is easy; failing it means training is broken"
    assert run.history[-1]["data_loss"] < run.history[0]["data_loss"]


def test_early_stopping_records_stop_and_best_epoch(splits):
    # min_delta far above any real improvement: the first epoch stays best, training stops after patience.
    cfg = variant(
        "train: {epochs: 20, batch_size: 32}\nregularization:\n  early_stopping: {patience: 2, min_delta: 100.0}\n"
    )
    run = train_run(cfg, splits, seed=0)
    m = run.metrics
    assert m.epochs_run == m.stopped_epoch == 3 == len(run.history)
    assert m.stopped_early is True
    assert m.restored_best_weights is True and m.best_epoch == 1


def test_l1_makes_weights_sparser_than_l2(splits):
    l1 = train_run(variant("train: {epochs: 6, batch_size: 16}\nregularization: {l1: 0.01}\n"), splits, seed=0).metrics
    l2 = train_run(variant("train: {epochs: 6, batch_size: 16}\nregularization: {l2: 0.01}\n"), splits, seed=0).metrics
    assert l1.weights.near_zero_share > l2.weights.near_zero_share
    hist = l1.weights.magnitude_histogram
    assert sum(hist.counts) == sum(layer.size for layer in l1.weights.layers.values())


def test_best_epoch_ignores_nan_and_respects_mode():
    history = [
        {"val_data_loss": 0.5, "val_accuracy": 0.8},
        {"val_data_loss": 0.3, "val_accuracy": 0.7},
        {"val_data_loss": float("nan"), "val_accuracy": 0.9},
    ]
    assert Monitor("val_data_loss").best_epoch(history) == 2
    assert Monitor("val_accuracy").best_epoch(history) == 3
