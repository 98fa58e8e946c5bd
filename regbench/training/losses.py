"""TODO."""

from __future__ import annotations

import keras

from regbench.config.schema import VariantConfig


def smoothed_cross_entropy(y_true, y_pred, smoothing):
    """Cross-entropy against (1 - s) one-hot + s / classes, from sparse labels; ``smoothing`` broadcasts
    against the labels (one value, or one per branch). Probabilities are clipped as Keras clips them."""
    log_p = keras.ops.log(keras.ops.clip(y_pred, keras.backend.epsilon(), 1.0 - keras.backend.epsilon()))
    hit = keras.ops.take_along_axis(log_p, keras.ops.expand_dims(keras.ops.cast(y_true, "int32"), -1), axis=-1)
    return -((1.0 - smoothing) * hit[..., 0] + smoothing * keras.ops.mean(log_p, axis=-1))


def mixup(cfg: VariantConfig) -> float:
    """MixUp's alpha (0: off). With MixUp, training labels are blended one-hot vectors, so every label a model
    sees (training, validation, test) is one-hot and its loss and metrics are the categorical ones."""
    a = cfg.data.augmentation
    return a.mixup if a is not None else 0.0


def targets(cfg: VariantConfig, labels, classes: int):
    """Labels as the run's loss expects them: class indices, or one-hot with MixUp."""
    return keras.utils.to_categorical(labels, classes).astype("float32") if mixup(cfg) else labels


def metrics(cfg: VariantConfig) -> list[keras.metrics.Metric]:
    """Accuracy and the data loss (cross-entropy without penalties), for class-index or one-hot labels (MixUp:
    training accuracy then counts a blended example right when the prediction is its larger part)."""
    if mixup(cfg):
        return [
            keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.CategoricalCrossentropy(name="data_loss"),
        ]
    return [
        keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        keras.metrics.SparseCategoricalCrossentropy(name="data_loss"),
    ]


def training_loss(cfg: VariantConfig):
    """The training loss of one run: cross-entropy, label-smoothed when asked (one-hot labels with MixUp)."""
    s = cfg.regularization.label_smoothing
    if mixup(cfg):
        return keras.losses.CategoricalCrossentropy(label_smoothing=s)  # (1 - s) one-hot + s / classes, as below
    if not s:
        return keras.losses.SparseCategoricalCrossentropy()

    def loss(y_true, y_pred):
        return smoothed_cross_entropy(keras.ops.reshape(y_true, (-1,)), y_pred, s)

    return loss
