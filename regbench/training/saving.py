"""Saved models: a run's trained network as a ``model.keras`` file that plain Keras loads without regbench, takes
images as the dataset stores them (pixels 0..255: regbench's scaling is the model's first layer) and outputs
class probabilities. A fused branch is saved as the plain model of its variant with the branch's weights."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np

from regbench.config.schema import VariantConfig
from regbench.training.model import build_model
from regbench.training.monitor import monitor_of

SAVE_MODES = ("none", "last", "best")


def for_raw_images(model: keras.Model, input_shape: tuple[int, ...]) -> keras.Model:
    """``model`` behind a Rescaling(1/255) input layer: the saved model takes raw pixels."""
    images = keras.Input(shape=input_shape, name="images")
    return keras.Model(images, model(keras.layers.Rescaling(1.0 / 255.0, name="pixels_to_unit")(images)))


def model_bytes(model: keras.Model) -> bytes:
    """The ``.keras`` file of ``model`` (Keras' own format), as bytes for the driver to write."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return path.read_bytes()


def branch_as_plain(
    cfg: VariantConfig,
    seed: int,
    input_shape: tuple[int, ...],
    num_classes: int,
    kernels: dict[str, np.ndarray],
    biases: dict[str, np.ndarray],
) -> keras.Model:
    """The plain model of ``cfg`` carrying one fused branch's Dense kernels and biases (by layer name)."""
    plain = build_model(cfg, input_shape, num_classes, seed=seed)
    for layer in plain.layers:
        if isinstance(layer, keras.layers.Dense):
            layer.kernel.assign(kernels[layer.name])
            layer.bias.assign(biases[layer.name])
    return plain


class BestWeights(keras.callbacks.Callback):
    """Keeps the weights of the epoch with the best monitored value (the run's monitor), for save_model: best."""

    def __init__(self, cfg: VariantConfig):
        super().__init__()
        self.monitor, mode = monitor_of(cfg)
        self.sign = 1.0 if mode == "min" else -1.0
        self.best_value, self.weights = math.inf, None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = float((logs or {}).get(self.monitor, math.nan))
        if math.isfinite(value) and self.sign * value < self.best_value:
            self.best_value, self.weights = self.sign * value, self.model.get_weights()

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps (training.checkpoint)."""
        return {"best_value": self.best_value, "weights": self.weights}

    def restore(self, state: dict[str, Any]) -> None:
        self.best_value, self.weights = state["best_value"], state["weights"]
