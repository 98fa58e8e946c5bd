"""Build the Keras model of one variant. The only place layers are chosen."""

from __future__ import annotations

import keras

from regbench.config import VariantConfig
from regbench.data import NUM_CLASSES
from regbench.framework import loop_steps_in_xla


def build_model(cfg: VariantConfig, input_shape: tuple[int, ...] = (28, 28)) -> keras.Model:
    """Flatten -> [Dense -> (BatchNorm) -> activation -> (Dropout)] per hidden layer -> Dense softmax.

    Every Dense kernel (hidden and output) carries ``L1L2(l1, l2)`` when either lambda is non-zero. With
    batch normalization the Dense layer has no bias (BatchNormalization's beta takes its place) and the
    activation follows the normalization. Dropout follows a hidden layer's activation when its rate > 0.

    Args:
        cfg: The resolved variant.
        input_shape: Shape of one example. Defaults to MNIST's (28, 28).
    """
    reg = cfg.regularization

    def penalty():
        return keras.regularizers.L1L2(l1=reg.l1, l2=reg.l2) if (reg.l1 or reg.l2) else None

    layers: list[keras.layers.Layer] = [keras.Input(shape=input_shape), keras.layers.Flatten(name="flatten")]
    for i, (units, rate) in enumerate(zip(cfg.model.hidden_units, cfg.dropout_rates(), strict=True), start=1):
        layers.append(
            keras.layers.Dense(
                units,
                use_bias=not reg.batchnorm,
                activation=None if reg.batchnorm else cfg.model.activation,
                kernel_regularizer=penalty(),
                name=f"dense_{i}",
            )
        )
        if reg.batchnorm:
            layers.append(keras.layers.BatchNormalization(name=f"batchnorm_{i}"))
            layers.append(keras.layers.Activation(cfg.model.activation, name=f"activation_{i}"))
        if rate > 0:
            layers.append(keras.layers.Dropout(rate, name=f"dropout_{i}"))
    layers.append(keras.layers.Dense(NUM_CLASSES, activation="softmax", kernel_regularizer=penalty(), name="output"))
    return keras.Sequential(layers, name="mlp")


def make_optimizer(cfg: VariantConfig) -> keras.optimizers.Optimizer:
    """The configured optimizer with its learning rate."""
    classes = {
        "adam": keras.optimizers.Adam,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
        "adamw": keras.optimizers.AdamW,
        "nadam": keras.optimizers.Nadam,
    }
    return classes[cfg.train.optimizer](learning_rate=cfg.train.learning_rate)


def compile_model(model: keras.Model, cfg: VariantConfig) -> keras.Model:
    """Compile with cross-entropy loss, accuracy, and the data loss tracked apart from the penalties.

    ``loss`` includes the L1/L2 penalties; ``data_loss`` is the plain cross-entropy, comparable between
    variants with and without penalties.
    """
    model.compile(
        optimizer=make_optimizer(cfg),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseCategoricalCrossentropy(name="data_loss"),
        ],
        steps_per_execution=cfg.train.steps_per_execution,
    )
    loop_steps_in_xla(model)
    return model
