"""Saved models: a run's trained network as a ``model.keras`` file that plain Keras loads without regbench, takes
images as the dataset stores them (pixels 0..255: regbench's scaling is the model's first layer) and outputs
class probabilities. A fused branch is saved as the plain model of its variant with the branch's weights."""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras
import numpy as np

from regbench.config.schema import VariantConfig
from regbench.training.model import build_model


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
    plain = build_model(cfg, input_shape, num_classes, seed=seed, streams=False)
    for layer in plain.layers:
        if isinstance(layer, keras.layers.Dense):
            layer.kernel.assign(kernels[layer.name])
            layer.bias.assign(biases[layer.name])
    return plain


WEIGHTED = (keras.layers.Dense, keras.layers.Conv2D, keras.layers.BatchNormalization)


def as_plain(
    model: keras.Model, cfg: VariantConfig, seed: int, input_shape: tuple[int, ...], num_classes: int
) -> keras.Model:
    """The plain model of ``cfg`` with Keras' own layers throughout (a trained run's random layers draw streams
    of regbench's: training.branches.KeyedRandom), carrying ``model``'s weights, layer by layer name."""
    plain = build_model(cfg, input_shape, num_classes, seed=seed, streams=False)
    for layer in plain.layers:
        if isinstance(layer, WEIGHTED):
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return plain
