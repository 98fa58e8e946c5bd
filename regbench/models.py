"""Build the Keras model of one variant. The only place the plain model's layers are put in order; what each
regularizer contributes comes from :mod:`regbench.components`."""

from __future__ import annotations

import keras

from regbench import components
from regbench.config import VariantConfig
from regbench.framework import loop_steps_in_xla


def build_model(cfg: VariantConfig, input_shape: tuple[int, ...] = (28, 28), num_classes: int = 10) -> keras.Model:
    """Flatten -> (input layers) -> [Dense -> (normalization) -> activation -> (noise, dropout)] per hidden
    layer -> Dense softmax.

    Every Dense kernel (hidden and output) carries the components' regularizer and constraint (``L1L2(l1, l2)``
    when either lambda is non-zero, ``MaxNorm(c)``). With batch normalization the Dense layer has no bias
    (BatchNormalization's beta takes its place) and the activation follows the normalization. Gaussian noise,
    Gaussian dropout and dropout follow a hidden layer's activation, in that order, when set.

    Args:
        cfg: The resolved variant.
        input_shape: Shape of one example (from the data). Defaults to MNIST's (28, 28).
        num_classes: Output units (from the data). Defaults to 10.
    """
    parts = components.COMPONENTS

    def dense_kwargs() -> dict:
        kwargs: dict = {}
        for c in parts:
            kwargs.update(c.dense_kwargs(cfg))
        return kwargs

    layers: list[keras.layers.Layer] = [keras.Input(shape=input_shape), keras.layers.Flatten(name="flatten")]
    layers += [layer for c in parts for layer in c.input_layers(cfg)]
    for i, units in enumerate(cfg.model.hidden_units, start=1):
        norm = [layer for c in parts for layer in c.normalization(cfg, i)]
        activation = cfg.model.activation
        layers.append(
            keras.layers.Dense(
                units, use_bias=not norm, activation=None if norm else activation, name=f"dense_{i}", **dense_kwargs()
            )
        )
        if norm:
            layers += norm + [keras.layers.Activation(activation, name=f"activation_{i}")]
        layers += [layer for c in parts for layer in c.after_activation(cfg, i)]
    layers.append(keras.layers.Dense(num_classes, activation="softmax", name="output", **dense_kwargs()))
    return keras.Sequential(layers, name="mlp")


def make_optimizer(cfg: VariantConfig) -> keras.optimizers.Optimizer:
    """The configured optimizer with its learning rate and options."""
    return components.optimizer(cfg)


def compile_model(model: keras.Model, cfg: VariantConfig) -> keras.Model:
    """Compile with the training loss, accuracy, and the data loss tracked apart from the penalties.

    ``loss`` includes the L1/L2 penalties (and label smoothing); ``data_loss`` is the plain cross-entropy,
    comparable between variants with and without penalties.
    """
    model.compile(
        optimizer=make_optimizer(cfg),
        loss=components.training_loss(cfg),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseCategoricalCrossentropy(name="data_loss"),
        ],
        steps_per_execution=cfg.train.steps_per_execution,
    )
    loop_steps_in_xla(model)
    return model
