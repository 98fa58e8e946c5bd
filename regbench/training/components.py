"""Every regularizer and training option, defined once.

A component names the config fields it owns, says how fusion treats each of them, and builds its part of
both models: the plain Keras model of one run (:func:`regbench.training.model.build_model`) and the fused model of K
runs (:func:`regbench.training.fused.build_fused`). The builders only ask the components; neither knows a regularizer
by name. How fusion treats a field:

- ``PER_BRANCH``: may differ between the branches of one fused model (each branch gets its own value);
- ``SHARED``: must be equal across a fused unit (part of :func:`fusion_key`);
- ``ALONE``: a run whose value differs from the default trains alone.

A field that no component declares blocks fusion (``fusion_key`` returns None), and a test walks the config
schema so that every field is declared: a new knob cannot be silently dropped under ``--fuse``.
"""

from __future__ import annotations

from typing import Any

import keras

from regbench.config.schema import VariantConfig
from regbench.training.branches import KeyedDropout, KeyedGaussianDropout, KeyedGaussianNoise, stream_seed

PER_BRANCH, SHARED, ALONE = "per-branch", "shared", "alone"


class Component:
    """A regularizer or training option. Every hook has a no-op default; a component overrides the ones it needs.

    Hooks with ``cfg`` build one run's model; hooks with ``cfgs`` build a fused model of ``len(cfgs)`` branches.
    """

    name = ""
    fields: dict[str, str] = {}

    def image_layers(self, cfg: VariantConfig) -> list[keras.layers.Layer]:
        """Layers on the input images (height, width, channels), before any conv block or flattening."""
        return []

    def input_layers(self, cfg: VariantConfig, seed: int | None) -> list[keras.layers.Layer]:
        """Layers on the flattened input. ``seed``: the run's, for layers drawing random streams of their own
        (training.branches.KeyedRandom); None: Keras' own layers (a saved model)."""
        return []

    def branch_input_layers(self, cfgs: list[VariantConfig], seeds: list[int]) -> list[keras.layers.Layer]:
        """Layers on the flattened input of a fused model, as [batch, K, in] (after SlotsToBranches), with each
        branch's run seed."""
        return []

    def normalization(self, cfg: VariantConfig, name: str) -> list[keras.layers.Layer]:
        """Layers between a hidden Dense or conv layer (then without bias) and its activation; ``name`` is that
        layer's suffix (``1``, ``conv_1``)."""
        return []

    def after_conv_block(self, cfg: VariantConfig, block: int) -> list[keras.layers.Layer]:
        """Layers after conv block ``block``'s activation (1-based), before its pooling."""
        return []

    def conv_kwargs(self, cfg: VariantConfig) -> dict[str, Any]:
        """Arguments of every keras.layers.Conv2D (kernel regularizer, constraint)."""
        return {}

    def after_activation(self, cfg: VariantConfig, layer: int, seed: int | None) -> list[keras.layers.Layer]:
        """Layers after hidden layer ``layer``'s activation (1-based); ``seed`` as for :meth:`input_layers`."""
        return []

    def branch_after_activation(
        self, cfgs: list[VariantConfig], layer: int, seeds: list[int]
    ) -> list[keras.layers.Layer]:
        return []

    def dense_kwargs(self, cfg: VariantConfig) -> dict[str, Any]:
        """Arguments of every keras.layers.Dense (kernel regularizer, constraint)."""
        return {}

    def branch_dense_kwargs(self, cfgs: list[VariantConfig]) -> dict[str, Any]:
        """Arguments of every fused BranchDense, one value per branch."""
        return {}

    def optimizer_kwargs(self, cfg: VariantConfig) -> dict[str, Any]:
        """Arguments of the Keras optimizer (shared by every branch of a fused model)."""
        return {}

    def callbacks(self, cfg: VariantConfig) -> list[keras.callbacks.Callback]:
        """Keras callbacks of one run."""
        return []

    def branch_callbacks(self, cfgs: list[VariantConfig]) -> list[keras.callbacks.Callback]:
        """Keras callbacks of a fused model (each branch's early stopping is its training.monitor.RunWatch's)."""
        return []


class PerLayer(Component):
    """A layer after each hidden layer's activation with one value per hidden layer (``dropout``,
    ``gaussian_noise``, ``gaussian_dropout``). It draws from a stream of the run's own (training.branches:
    keyed by the run seed and the layer), alone and as a fused branch alike, so a run's masks and noise do not
    depend on how it is trained; a saved model has Keras' own layer (inactive in inference)."""

    def __init__(self, key: str, plain: type, keyed: type):
        self.name, self.plain, self.keyed = key, plain, keyed
        self.fields = {f"regularization.{key}": PER_BRANCH}

    def after_activation(self, cfg, layer, seed):
        value = cfg.per_layer(self.name)[layer - 1]
        if value <= 0:
            return []
        name = f"{self.name}_{layer}"
        if seed is None:
            return [self.plain(value, name=name)]
        return [self.keyed([value], [stream_seed(seed, name)], name=name)]

    def branch_after_activation(self, cfgs, layer, seeds):
        values = [c.per_layer(self.name)[layer - 1] for c in cfgs]
        if not any(values):
            return []
        name = f"{self.name}_{layer}"
        return [self.keyed(values, [stream_seed(s, name) for s in seeds], name=name)]


class ConvNet(Component):
    """Conv blocks before the Dense head (model.kind cnn), with SpatialDropout2D per block. Fused training
    covers MLPs only: a CNN trains alone."""

    name = "cnn"
    fields = {
        "model.kind": ALONE,
        "model.conv_filters": SHARED,
        "model.kernel_size": SHARED,
        "model.pool": SHARED,
        "regularization.spatial_dropout": ALONE,
    }

    def after_conv_block(self, cfg, block):
        rate = cfg.spatial_dropout_rates()[block - 1]
        return [keras.layers.SpatialDropout2D(rate, name=f"spatial_dropout_{block}")] if rate > 0 else []


class Augmentation(Component):
    """Random transformations of the training images, from Keras' preprocessing layers (inactive in inference);
    MixUp is applied where batches are assembled (regbench.training.batches) and changes the labels' form
    (training.losses.targets). Each run draws its own, so augmented runs train alone."""

    name = "augmentation"
    fields = {"data.augmentation": ALONE}

    def image_layers(self, cfg):
        a = cfg.data.augmentation
        if a is None:
            return []
        layers: list[keras.layers.Layer] = []
        if a.translate:
            layers.append(keras.layers.RandomTranslation(a.translate, a.translate, fill_mode="constant"))
        if a.rotate:
            layers.append(keras.layers.RandomRotation(a.rotate / 360.0, fill_mode="constant"))
        if a.zoom:
            layers.append(keras.layers.RandomZoom(a.zoom, fill_mode="constant"))
        if a.flip:
            layers.append(keras.layers.RandomFlip(a.flip))
        if a.noise:
            layers.append(keras.layers.GaussianNoise(a.noise))
        return layers


class InputDropout(Component):
    name = "input_dropout"
    fields = {"regularization.input_dropout": PER_BRANCH}

    def input_layers(self, cfg, seed):
        rate = cfg.regularization.input_dropout
        if rate <= 0:
            return []
        if seed is None:
            return [keras.layers.Dropout(rate, name="input_dropout")]
        return [KeyedDropout([rate], [stream_seed(seed, "input_dropout")], name="input_dropout")]

    def branch_input_layers(self, cfgs, seeds):
        rates = [c.regularization.input_dropout for c in cfgs]
        streams = [stream_seed(s, "input_dropout") for s in seeds]
        return [KeyedDropout(rates, streams, name="input_dropout")] if any(rates) else []


class Penalty(Component):
    """L1/L2 weight penalties on every Dense kernel, added to the loss."""

    name = "l1_l2"
    fields = {"regularization.l1": PER_BRANCH, "regularization.l2": PER_BRANCH}

    def dense_kwargs(self, cfg):
        r = cfg.regularization
        return {"kernel_regularizer": keras.regularizers.L1L2(l1=r.l1, l2=r.l2)} if (r.l1 or r.l2) else {}

    def conv_kwargs(self, cfg):
        return self.dense_kwargs(cfg)

    def branch_dense_kwargs(self, cfgs):
        return {"l1": [c.regularization.l1 for c in cfgs], "l2": [c.regularization.l2 for c in cfgs]}


class MaxNorm(Component):
    """keras.constraints.MaxNorm(c) on every Dense kernel: each unit's incoming weights (axis 0) kept within c."""

    name = "max_norm"
    fields = {"regularization.max_norm": PER_BRANCH}

    def dense_kwargs(self, cfg):
        c = cfg.regularization.max_norm
        return {"kernel_constraint": keras.constraints.MaxNorm(max_value=c, axis=0)} if c is not None else {}

    def conv_kwargs(self, cfg):  # a conv kernel is [height, width, in, out]: each filter's weights within c
        c = cfg.regularization.max_norm
        return {"kernel_constraint": keras.constraints.MaxNorm(max_value=c, axis=[0, 1, 2])} if c is not None else {}

    def branch_dense_kwargs(self, cfgs):
        return {"max_norm": [c.regularization.max_norm for c in cfgs]}


class BatchNorm(Component):
    """BatchNormalization between each hidden Dense (without bias) and its activation. Its statistics span the
    batch, which a fused model shares between branches, so such runs train alone."""

    name = "batchnorm"
    fields = {"regularization.batchnorm": ALONE}

    def normalization(self, cfg, name):
        return [keras.layers.BatchNormalization(name=f"batchnorm_{name}")] if cfg.regularization.batchnorm else []


class EarlyStopping(Component):
    """Early stopping on a validation quantity: each run's watch stops it (training.monitor.RunWatch), alone or
    as a fused branch (then it keeps training with the others while its weights are kept aside)."""

    name = "early_stopping"
    fields = {"regularization.early_stopping": PER_BRANCH}


class LabelSmoothing(Component):
    """Smoothed targets in the training loss (:mod:`regbench.training.losses`); fused, each branch smooths with
    its own value."""

    name = "label_smoothing"
    fields = {"regularization.label_smoothing": PER_BRANCH}


OPTIMIZERS = {
    "adam": "Adam",
    "sgd": "SGD",
    "rmsprop": "RMSprop",
    "adamw": "AdamW",
    "nadam": "Nadam",
}


class Optimizer(Component):
    """The optimizer and its options. One optimizer updates every branch of a fused model, so its settings are
    shared; gradient clipping by norm would mix the branches' gradients into one norm, so it trains alone."""

    name = "optimizer"
    fields = {
        "train.optimizer": SHARED,
        "train.learning_rate": SHARED,
        "train.momentum": SHARED,
        "train.nesterov": SHARED,
        "train.weight_decay": SHARED,
        "train.clipnorm": ALONE,
    }

    def optimizer_kwargs(self, cfg):
        t = cfg.train
        kwargs: dict[str, Any] = {"learning_rate": t.learning_rate}
        if t.momentum is not None:
            kwargs["momentum"] = t.momentum
        if t.nesterov:
            kwargs["nesterov"] = True
        if t.weight_decay is not None:
            kwargs["weight_decay"] = t.weight_decay
        if t.clipnorm is not None:
            kwargs["clipnorm"] = t.clipnorm
        return kwargs


class LearningRateSchedule(keras.callbacks.Callback):
    """Sets the optimizer's learning rate at the start of each epoch from train.lr_schedule, and logs it as
    ``lr`` (a column of history.csv)."""

    def __init__(self, cfg: VariantConfig):
        super().__init__()
        self.train = cfg.train

    def on_epoch_begin(self, epoch, logs=None):
        self.model.optimizer.learning_rate.assign(self.train.learning_rate_at(epoch))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class Schedule(Component):
    name = "lr_schedule"
    fields = {"train.lr_schedule": SHARED}

    def callbacks(self, cfg):
        return [LearningRateSchedule(cfg)]

    def branch_callbacks(self, cfgs):
        return [LearningRateSchedule(cfgs[0])]  # a SHARED field: the same for every branch


class Reference(Component):
    """A published result a variant is compared with: no effect on training."""

    name = "reference"
    fields = {"reference": PER_BRANCH}


class Structure(Component):
    """What every run has: data, architecture, batches and epochs (shared by a fused unit), and its seed."""

    name = "structure"
    fields = {
        "data.dataset": SHARED,
        "data.dir": SHARED,
        "data.validation_split": SHARED,
        "data.train_subset": SHARED,
        "data.label_noise": SHARED,
        "data.seed": SHARED,
        "model.hidden_units": SHARED,
        "model.activation": SHARED,
        "train.batch_size": SHARED,
        "train.epochs": SHARED,
        "train.steps_per_execution": SHARED,
        "train.seeds": PER_BRANCH,
    }


COMPONENTS: list[Component] = [
    Structure(),
    Augmentation(),
    ConvNet(),
    InputDropout(),
    Penalty(),
    MaxNorm(),
    BatchNorm(),
    PerLayer("gaussian_noise", keras.layers.GaussianNoise, KeyedGaussianNoise),
    PerLayer("gaussian_dropout", keras.layers.GaussianDropout, KeyedGaussianDropout),
    PerLayer("dropout", keras.layers.Dropout, KeyedDropout),
    LabelSmoothing(),
    EarlyStopping(),
    Optimizer(),
    Schedule(),
    Reference(),
]


def optimizer(cfg: VariantConfig) -> keras.optimizers.Optimizer:
    """The configured Keras optimizer with every component's options."""
    kwargs: dict[str, Any] = {}
    for c in COMPONENTS:
        kwargs.update(c.optimizer_kwargs(cfg))
    return getattr(keras.optimizers, OPTIMIZERS[cfg.train.optimizer])(**kwargs)


def callbacks(cfg: VariantConfig) -> list[keras.callbacks.Callback]:
    """Every component's callbacks for one run."""
    return [cb for c in COMPONENTS for cb in c.callbacks(cfg)]


def branch_callbacks(cfgs: list[VariantConfig]) -> list[keras.callbacks.Callback]:
    """Every component's callbacks for a fused model."""
    return [cb for c in COMPONENTS for cb in c.branch_callbacks(cfgs)]
