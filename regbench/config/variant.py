"""The sections a variant sets — ``data``, ``model``, ``regularization``, ``train`` and a published ``reference``
— and the resolved variant itself (:class:`VariantConfig`): what one training run uses. Defaults live here and in
:mod:`regbench.config.study`, nowhere else.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from regbench.config.base import MAX_SEED, Strict, show_value
from regbench.config.choices import BEST_EPOCH_MONITOR, DATASET

SECTIONS = ("data", "model", "regularization", "train")


VARIANT_KEYS = (*SECTIONS, "reference")  # what a variant may set: the sections, and a published reference


class AugmentationConfig(Strict):
    """Random transformations of training images (Keras' RandomTranslation, RandomRotation, RandomZoom,
    RandomFlip, GaussianNoise), active in training only, seeded by the run's seed; and MixUp, which blends
    examples and their labels in the batches regbench feeds (regbench.training.batches)."""

    translate: float = Field(0.0, ge=0.0, lt=1.0, description="Largest shift, as a fraction of height and width.")
    rotate: float = Field(0.0, ge=0.0, le=180.0, description="Largest rotation in degrees, either way.")
    zoom: float = Field(0.0, ge=0.0, lt=1.0, description="Largest zoom in or out, as a fraction.")
    flip: Literal["horizontal", "vertical"] | None = Field(None, description="Random flips; null: none.")
    noise: float = Field(0.0, ge=0.0, description="Stddev of Gaussian pixel noise (pixels are in [0, 1]).")
    mixup: float = Field(
        0.0,
        ge=0.0,
        description="MixUp's alpha (as keras.layers.MixUp): each training example is blended with another of its "
        "batch, images and labels alike, with a weight drawn from Beta(alpha, alpha); 0: off.",
    )


class DataConfig(Strict):
    """Which dataset, where it lives, and how the training set is split and perturbed."""

    dataset: Literal["mnist", "fashion_mnist", "cifar10", "cifar100"] = Field(
        DATASET, description="Dataset to train on (CIFAR needs its files or the internet: see the README)."
    )
    dir: str | None = Field(
        None,
        description="Directory holding <dataset>.npz, the four IDX files, or CIFAR's Python batches. Overrides "
        "REGBENCH_DATA_DIR.",
    )
    validation_split: float = Field(
        0.1, gt=0.0, lt=1.0, description="Share of the training set held out for validation (model selection)."
    )
    train_subset: int | None = Field(
        None, ge=1, description="Use only this many training examples (before the validation split)."
    )
    label_noise: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of training labels replaced by a random class (seeded)."
    )
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seed of the subset, label noise and validation split.")
    augmentation: AugmentationConfig | None = Field(
        None, description="Random image transformations in training (Keras preprocessing layers); null: none."
    )


class ModelConfig(Strict):
    """The network: a Dense stack on flattened images (``mlp``), or conv blocks then a Dense head (``cnn``)."""

    kind: Literal["mlp", "cnn"] = Field("mlp", description="mlp: Dense layers only; cnn: conv blocks, then Dense.")
    hidden_units: list[int] = Field(
        [128, 64], min_length=1, description="Widths of the hidden Dense layers, input side first (a CNN's head)."
    )
    activation: Literal["relu", "tanh", "sigmoid", "elu", "gelu", "selu", "swish"] = Field(
        "relu", description="Activation of every hidden layer and conv block."
    )
    conv_filters: list[int] | None = Field(
        None,
        min_length=1,
        description="cnn only: filters of each conv block (Conv2D -> [BatchNormalization] -> activation -> "
        "[SpatialDropout2D] -> pooling). null: [32, 64] for a cnn.",
    )
    kernel_size: int | None = Field(None, ge=1, description="cnn only: conv kernel size. null: 3 for a cnn.")
    pool: Literal["max", "avg"] | None = Field(
        "max", description="cnn only: 2x2 pooling after each conv block: max, avg, or null for none."
    )

    @field_validator("hidden_units", "conv_filters")
    @classmethod
    def _positive_units(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(u < 1 for u in value):
            raise ValueError("expected a list of layer widths >= 1")
        return value

    @model_validator(mode="after")
    def _cnn_defaults(self) -> ModelConfig:
        """A cnn's defaults for the conv keys, which an mlp must leave null."""
        if self.kind == "cnn":
            if self.conv_filters is None:
                self.conv_filters = [32, 64]
            if self.kernel_size is None:
                self.kernel_size = 3
        return self


class EarlyStoppingConfig(Strict):
    """Keras ``EarlyStopping`` arguments. Monitors the validation data loss by default."""

    patience: int = Field(3, ge=0, description="Epochs without improvement before training stops.")
    min_delta: float = Field(0.0, ge=0.0, description="Smallest change that counts as an improvement.")
    monitor: Literal["val_data_loss", "val_accuracy", "val_loss"] = Field(
        BEST_EPOCH_MONITOR,
        description="Validation quantity to watch. val_data_loss is the cross-entropy without penalties.",
    )
    restore_best_weights: bool = Field(True, description="Restore the weights of the best epoch at the end.")
    start_from_epoch: int = Field(0, ge=0, description="Epochs to wait before stopping may start.")


def _per_layer(value: Any, low: float, high: float | None, what: str) -> float | list[float]:
    """A number in [low, high) (``high`` None: no upper bound), or a list of such numbers (one per hidden layer).
    ``what`` is the 'expected ...' text of the error."""

    def one(v: Any) -> float:
        try:
            r = None if isinstance(v, bool) else float(v)
        except (TypeError, ValueError):
            r = None
        if r is None or not math.isfinite(r) or r < low or (high is not None and r >= high):
            raise ValueError(f"expected {what}")
        return r

    return [one(v) for v in value] if isinstance(value, list) else one(value)


class RegularizationConfig(Strict):
    """Regularizers. Keras' own argument names: ``l1``/``l2`` are kernel penalty lambdas."""

    dropout: float | list[float] = Field(
        0.0,
        description="Dropout rate after every hidden layer, or a list with one rate per hidden layer.",
    )
    l1: float = Field(0.0, ge=0.0, description="L1 penalty lambda on every Dense kernel (adds l1*sum|w|).")
    l2: float = Field(0.0, ge=0.0, description="L2 penalty lambda on every Dense kernel (adds l2*sum w^2).")
    input_dropout: float = Field(
        0.0, ge=0.0, lt=1.0, description="Dropout rate on the flattened input (Srivastava et al. use 0.2)."
    )
    max_norm: float | None = Field(
        None,
        gt=0.0,
        description="keras.constraints.MaxNorm(c) on every Dense kernel: each unit's incoming weight vector is "
        "rescaled to L2 norm <= c after every update. null: off.",
    )
    gaussian_noise: float | list[float] = Field(
        0.0,
        description="Stddev of GaussianNoise after every hidden layer (training only), or one per hidden layer.",
    )
    gaussian_dropout: float | list[float] = Field(
        0.0,
        description="Rate of GaussianDropout after every hidden layer (multiplicative noise of stddev "
        "sqrt(rate / (1 - rate))), or one per hidden layer.",
    )
    label_smoothing: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Label smoothing of the training loss: targets (1 - s) one-hot + s / classes. The reported "
        "data loss stays the plain cross-entropy.",
    )
    batchnorm: bool = Field(
        False, description="BatchNormalization between each hidden Dense (and conv) layer and its activation."
    )
    spatial_dropout: float | list[float] = Field(
        0.0,
        description="cnn only: SpatialDropout2D rate after each conv block (whole feature maps), or one per block.",
    )
    early_stopping: EarlyStoppingConfig | None = Field(
        None, description="null for no early stopping, or a mapping of EarlyStopping arguments."
    )

    @field_validator("dropout", "gaussian_dropout", "spatial_dropout", mode="before")
    @classmethod
    def _rates_in_range(cls, value: Any) -> float | list[float]:
        return _per_layer(value, 0.0, 1.0, "a rate in [0, 1) or a list of such rates")

    @field_validator("gaussian_noise", mode="before")
    @classmethod
    def _stddevs(cls, value: Any) -> float | list[float]:
        return _per_layer(value, 0.0, None, "a standard deviation >= 0 or a list of such standard deviations")


class ConstantSchedule(Strict):
    """The learning rate stays train.learning_rate."""

    kind: Literal["constant"] = "constant"

    def multiplier(self, epoch: int, epochs: int) -> float:
        """The learning rate of 0-based ``epoch`` (of ``epochs``) as a multiple of train.learning_rate."""
        return 1.0


class StepSchedule(Strict):
    """The learning rate is multiplied by ``factor`` every ``every`` epochs."""

    kind: Literal["step"]
    every: int = Field(..., ge=1, description="Epochs between two drops.")
    factor: float = Field(..., gt=0.0, lt=1.0, description="Multiplier at each drop, in (0, 1).")

    def multiplier(self, epoch: int, epochs: int) -> float:
        return self.factor ** (epoch // self.every)


class ExponentialSchedule(Strict):
    """The learning rate is multiplied by ``decay_rate`` every epoch."""

    kind: Literal["exponential"]
    decay_rate: float = Field(..., gt=0.0, lt=1.0, description="Multiplier per epoch, in (0, 1).")

    def multiplier(self, epoch: int, epochs: int) -> float:
        return self.decay_rate**epoch


class CosineSchedule(Strict):
    """Linear warm-up over ``warmup_epochs``, then a half cosine that reaches 0 at the end of the last epoch."""

    kind: Literal["cosine"]
    warmup_epochs: int = Field(0, ge=0, description="Epochs of linear warm-up from lr / (warmup_epochs + 1).")

    def multiplier(self, epoch: int, epochs: int) -> float:
        if epoch < self.warmup_epochs:
            return (epoch + 1) / (self.warmup_epochs + 1)
        return 0.5 * (1.0 + math.cos(math.pi * (epoch - self.warmup_epochs) / (epochs - self.warmup_epochs)))


SCHEDULE_KINDS = ("constant", "step", "exponential", "cosine")


Schedule = Annotated[
    ConstantSchedule | StepSchedule | ExponentialSchedule | CosineSchedule, Field(discriminator="kind")
]


class TrainConfig(Strict):
    """Optimizer and schedule."""

    optimizer: Literal["adam", "sgd", "rmsprop", "adamw", "nadam"] = Field("adam", description="Optimizer.")
    learning_rate: float = Field(1e-3, gt=0.0, description="Learning rate of the optimizer.")
    batch_size: int = Field(32, ge=1, le=2**20, description="Examples per gradient step.")
    epochs: int = Field(10, ge=1, le=10_000, description="Maximum number of epochs.")
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] = Field(
        [0], min_length=1, description="One training run per seed (init, batch order, dropout)."
    )
    steps_per_execution: int = Field(
        500, ge=1, le=2**20, description="Batches per compiled call; larger removes framework overhead. Same results."
    )
    momentum: float | None = Field(
        None,
        ge=0.0,
        lt=1.0,
        description="Momentum of sgd or rmsprop (Keras' form: v = momentum * v - learning_rate * grad). "
        "null: the optimizer's default (0).",
    )
    nesterov: bool = Field(False, description="Nesterov momentum (sgd only).")
    weight_decay: float | None = Field(
        None,
        ge=0.0,
        description="Decoupled weight decay through the optimizer's own weight_decay (w -= learning_rate * "
        "weight_decay * w each step), unlike the l2 penalty in the loss. null: the optimizer's default "
        "(0.004 for adamw, none otherwise).",
    )
    clipnorm: float | None = Field(
        None, gt=0.0, description="Clip each weight's gradient to this L2 norm. null: no clipping."
    )
    lr_schedule: Schedule = Field(
        ConstantSchedule(),
        description="Learning-rate schedule per epoch: {kind: constant}, {kind: step, every: N, factor: F}, "
        "{kind: exponential, decay_rate: R} or {kind: cosine, warmup_epochs: W}.",
    )

    @field_validator("seeds")
    @classmethod
    def _each_seed_once(cls, seeds: list[int]) -> list[int]:
        repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
        if repeated:
            raise ValueError(
                f"each seed once (a seed names its run's folder); {', '.join(map(str, repeated))} is there "
                "more than once"
            )
        return seeds

    def learning_rate_at(self, epoch: int) -> float:
        """The learning rate of 0-based ``epoch`` under ``lr_schedule``."""
        return self.learning_rate * self.lr_schedule.multiplier(epoch, self.epochs)


PER_LAYER = ("dropout", "gaussian_noise", "gaussian_dropout")


class Reference(Strict):
    """A published result this variant replicates: shown beside the measured mean ± std by run and compare."""

    metric: Literal["test_error", "test_accuracy"] = Field(..., description="test_error or test_accuracy, in percent.")
    value: float = Field(..., ge=0.0, le=100.0, description="The published value, in percent.")
    source: str = Field("", description="Where it comes from, e.g. 'Srivastava et al. 2014, Table 9'.")


class VariantConfig(Strict):
    """One fully resolved variant: what a single training run (per seed) uses."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    regularization: RegularizationConfig = RegularizationConfig()
    train: TrainConfig = TrainConfig()
    reference: Reference | None = Field(None, description="A published result to compare with (not a setting).")

    @model_validator(mode="after")
    def _fields_agree(self) -> VariantConfig:
        """Checks across fields, each raised as 'dotted.key: expected ..., got ...'."""
        layers = len(self.model.hidden_units)
        for key in PER_LAYER:
            values = getattr(self.regularization, key)
            if isinstance(values, list) and len(values) != layers:
                raise ValueError(
                    f"regularization.{key}: expected {layers} {'rates' if 'dropout' in key else 'values'} (one per "
                    f"hidden layer in model.hidden_units), got {len(values)}"
                )
        m = self.model
        if m.kind == "mlp":
            for key, value, default in (
                ("model.conv_filters", m.conv_filters, None),
                ("model.kernel_size", m.kernel_size, None),
                ("model.pool", m.pool, "max"),
                ("regularization.spatial_dropout", self.regularization.spatial_dropout, 0.0),
            ):
                if value != default:
                    raise ValueError(
                        f"{key}: expected it unset with model.kind mlp (a cnn key), got {show_value(value)}"
                    )
        else:
            rates = self.regularization.spatial_dropout
            if isinstance(rates, list) and len(rates) != len(m.conv_filters):
                raise ValueError(
                    f"regularization.spatial_dropout: expected {len(m.conv_filters)} rates (one per conv block "
                    f"in model.conv_filters), got {len(rates)}"
                )
        t = self.train
        stopping = self.regularization.early_stopping
        if stopping is not None and stopping.start_from_epoch + stopping.patience >= t.epochs:
            raise ValueError(
                f"regularization.early_stopping.patience: expected patience + start_from_epoch below train.epochs "
                f"({t.epochs}) so that it can ever stop a run, got {stopping.patience} + {stopping.start_from_epoch}"
            )
        if t.momentum is not None and t.optimizer not in ("sgd", "rmsprop"):
            raise ValueError(
                f"train.momentum: expected null with optimizer {t.optimizer} (only sgd and rmsprop take a "
                f"momentum), got {t.momentum}"
            )
        if t.nesterov and t.optimizer != "sgd":
            raise ValueError(f"train.nesterov: expected false with optimizer {t.optimizer} (sgd only), got true")
        schedule = t.lr_schedule
        if isinstance(schedule, CosineSchedule) and schedule.warmup_epochs >= t.epochs:
            raise ValueError(
                f"train.lr_schedule.warmup_epochs: expected fewer than train.epochs ({t.epochs}), "
                f"got {schedule.warmup_epochs}"
            )
        if isinstance(schedule, StepSchedule) and schedule.every >= t.epochs:
            raise ValueError(
                f"train.lr_schedule.every: expected fewer than train.epochs ({t.epochs}) so that the rate "
                f"ever drops, got {schedule.every}"
            )
        return self

    def per_layer(self, key: str) -> list[float]:
        """A per-hidden-layer regularizer (dropout, gaussian_noise, gaussian_dropout) as one value per layer."""
        values = getattr(self.regularization, key)
        return list(values) if isinstance(values, list) else [values] * len(self.model.hidden_units)

    def dropout_rates(self) -> list[float]:
        return self.per_layer("dropout")

    def spatial_dropout_rates(self) -> list[float]:
        """One SpatialDropout2D rate per conv block (empty for an MLP)."""
        rates = self.regularization.spatial_dropout
        blocks = len(self.model.conv_filters or [])
        return list(rates) if isinstance(rates, list) else [rates] * blocks


class VariantOverrides(Strict):
    """A variant as written: any subset of the sections, each any subset of its keys (the rest inherited).

    Only used for the JSON Schema: variants are validated after merging with the defaults, as VariantConfig.
    """

    data: DataConfig | None = None
    model: ModelConfig | None = None
    regularization: RegularizationConfig | None = None
    train: TrainConfig | None = None
    reference: Reference | None = None
