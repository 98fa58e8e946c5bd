"""The training loss and metrics of a run alone and of a fused model: cross-entropy, label smoothing (per
branch when fused), and the one-hot targets MixUp needs. The one owner of label smoothing's behaviour."""

from __future__ import annotations

import keras
import numpy as np

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


def branch_labels(y_true, branches: int):
    """Labels [batch] (one batch for all) or [batch, slots] -> [batch, K], to score predictions [batch, K, ...]."""
    y = keras.ops.cast(y_true, "int32")
    if len(y.shape) == 1:
        y = keras.ops.reshape(y, (-1, 1))
    return keras.ops.repeat(y, branches // y.shape[1], axis=1)


def branch_loss(cfgs: list[VariantConfig]):
    """The sum of the branches' training losses (so each branch's gradient is its own): cross-entropy, label-
    smoothed per branch where a branch asks for it."""
    branches = len(cfgs)
    smoothing = np.array([[c.regularization.label_smoothing for c in cfgs]], dtype="float32")

    def loss(y_true, y_pred):
        y = branch_labels(y_true, branches)
        if not smoothing.any():
            return keras.ops.sum(keras.losses.sparse_categorical_crossentropy(y, y_pred), axis=1)
        return keras.ops.sum(smoothed_cross_entropy(y, y_pred, smoothing), axis=1)

    return loss
