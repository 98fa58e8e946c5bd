"""A run trained alone: the plain Keras model of its variant, as the :class:`~regbench.training.driver.Strategy`
of a unit of one run."""

from __future__ import annotations

import logging
from typing import Any

import keras

from regbench.data.splits import Splits
from regbench.training import components, losses
from regbench.training.batches import BatchOrder, training_input
from regbench.training.driver import RunSpec
from regbench.training.model import build_model, compile_model
from regbench.training.monitor import RunWatch
from regbench.training.results import HISTORY_KEYS, Evaluated, dense_kernels, penalty, predict, scores
from regbench.training.saving import as_plain, for_raw_images, model_bytes

# Each variant compiles its own training function; TensorFlow's "retracing" warning about that is noise here.
logging.getLogger("tensorflow").setLevel(logging.ERROR)


class Alone:
    """One run's model, initialised from its seed (per layer: training.model.build_model), with its own batch
    order and MixUp draws (training.batches). Keras' TerminateOnNaN stops it within an epoch whose loss turns NaN;
    its watch stops it at the end of an epoch."""

    fused = None

    def __init__(self, spec: RunSpec, splits: Splits, shuffle: bool = True, keep_best: bool = False):
        cfg, seed = spec.config, spec.seed
        self.cfg, self.seed, self.splits = cfg, seed, splits
        keras.utils.set_random_seed(seed)
        shape, classes = splits.x_train.shape[1:], splits.num_classes
        self.model = compile_model(build_model(cfg, shape, classes, seed=seed), cfg)
        self.watches = [RunWatch(cfg, classes, keep_best, spec.on_epoch)]
        self.order = BatchOrder(
            len(splits.x_train), [seed] if shuffle else None, mixup=(losses.mixup(cfg), cfg.train.batch_size)
        )
        x, y = splits.x_train, splits.y_train
        self.data = training_input(self.model, x, y, cfg.train.batch_size, self.order, classes)

    def callbacks(self) -> list[keras.callbacks.Callback]:
        return [self.order, keras.callbacks.TerminateOnNaN(), *components.callbacks(self.cfg)]

    def rows(self, epoch: int, logs: dict[str, Any]):
        values = {k: float(v) for k, v in logs.items()}
        row = {"epoch": epoch + 1, **{k: values[k] for k in HISTORY_KEYS if k in values}}
        return [(row, self.model.get_weights)]

    def fit_arguments(self) -> dict[str, Any]:
        s = self.splits
        validation = (s.x_val, losses.targets(self.cfg, s.y_val, s.num_classes))
        return {"x": self.data, "validation_data": validation, "epochs": self.cfg.train.epochs}

    def evaluate(self) -> list[Evaluated]:
        """The run's end weights in place, then its test and training sets scored from its predictions, as a
        fused branch is (training.results.scores)."""
        (watch,) = self.watches
        end = watch.end_weights()
        if end is not None:
            self.model.set_weights(end)
        s = self.splits
        kernels = dense_kernels(self.model)
        extra = penalty(self.cfg, kernels)
        test, train = scores(predict(self.model, s.x_test), s.y_test), scores(predict(self.model, s.x_train), s.y_train)
        test["loss"] = test["data_loss"] + extra
        return [Evaluated(test, train, kernels, int(self.model.count_params()))]

    def saved(self, run: int) -> bytes:
        weights = self.watches[run].saved_weights(None)
        if weights is not None:
            self.model.set_weights(weights)
        shape = self.splits.x_train.shape[1:]
        plain = as_plain(self.model, self.cfg, self.seed, shape, self.splits.num_classes)
        return model_bytes(for_raw_images(plain, shape))
