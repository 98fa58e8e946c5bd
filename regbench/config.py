"""Typed study configs: load YAML, validate, expand variants, apply ``--set`` overrides.

A study file has the sections ``name``, ``data``, ``model``, ``regularization`` and ``train`` (defaults for
every variant) and ``variants``: a mapping from variant name to overrides of those sections. Defaults live
in the pydantic models below and nowhere else; a YAML file is a diff against them.

Every problem in a file is reported at once, each as ``FILE:LINE: dotted.key: expected ..., got ...``.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from regbench.errors import ConfigError

SECTIONS = ("data", "model", "regularization", "train")
VARIANT_KEYS = (*SECTIONS, "reference")  # what a variant may set: the sections, and a published reference


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)


class AugmentationConfig(_Strict):
    """Random transformations of training images (Keras' RandomTranslation, RandomRotation, RandomZoom,
    RandomFlip, GaussianNoise), active in training only, seeded by the run's seed; and MixUp, which blends
    examples and their labels in the batches regbench feeds (regbench.batches)."""

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


class DataConfig(_Strict):
    """Which dataset, where it lives, and how the training set is split and perturbed."""

    dataset: Literal["mnist", "fashion_mnist", "cifar10", "cifar100"] = Field(
        "mnist", description="Dataset to train on (CIFAR needs its files or the internet: see the README)."
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
    seed: int = Field(0, ge=0, description="Seed of the subset, label noise and validation split.")
    augmentation: AugmentationConfig | None = Field(
        None, description="Random image transformations in training (Keras preprocessing layers); null: none."
    )


class ModelConfig(_Strict):
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


class EarlyStoppingConfig(_Strict):
    """Keras ``EarlyStopping`` arguments. Monitors the validation data loss by default."""

    patience: int = Field(3, ge=0, description="Epochs without improvement before training stops.")
    min_delta: float = Field(0.0, ge=0.0, description="Smallest change that counts as an improvement.")
    monitor: Literal["val_data_loss", "val_accuracy", "val_loss"] = Field(
        "val_data_loss",
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


class RegularizationConfig(_Strict):
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


class ConstantSchedule(_Strict):
    """The learning rate stays train.learning_rate."""

    kind: Literal["constant"] = "constant"

    def multiplier(self, epoch: int, epochs: int) -> float:
        """The learning rate of 0-based ``epoch`` (of ``epochs``) as a multiple of train.learning_rate."""
        return 1.0


class StepSchedule(_Strict):
    """The learning rate is multiplied by ``factor`` every ``every`` epochs."""

    kind: Literal["step"]
    every: int = Field(..., ge=1, description="Epochs between two drops.")
    factor: float = Field(..., gt=0.0, lt=1.0, description="Multiplier at each drop, in (0, 1).")

    def multiplier(self, epoch: int, epochs: int) -> float:
        return self.factor ** (epoch // self.every)


class ExponentialSchedule(_Strict):
    """The learning rate is multiplied by ``decay_rate`` every epoch."""

    kind: Literal["exponential"]
    decay_rate: float = Field(..., gt=0.0, lt=1.0, description="Multiplier per epoch, in (0, 1).")

    def multiplier(self, epoch: int, epochs: int) -> float:
        return self.decay_rate**epoch


class CosineSchedule(_Strict):
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


class TrainConfig(_Strict):
    """Optimizer and schedule."""

    optimizer: Literal["adam", "sgd", "rmsprop", "adamw", "nadam"] = Field("adam", description="Optimizer.")
    learning_rate: float = Field(1e-3, gt=0.0, description="Learning rate of the optimizer.")
    batch_size: int = Field(32, ge=1, description="Examples per gradient step.")
    epochs: int = Field(10, ge=1, description="Maximum number of epochs.")
    seeds: list[Annotated[int, Field(ge=0)]] = Field(
        [0], min_length=1, description="One training run per seed (init, batch order, dropout)."
    )
    steps_per_execution: int = Field(
        500, ge=1, description="Batches per compiled call; larger removes framework overhead. Same results."
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

    def learning_rate_at(self, epoch: int) -> float:
        """The learning rate of 0-based ``epoch`` under ``lr_schedule``."""
        return self.learning_rate * self.lr_schedule.multiplier(epoch, self.epochs)


PER_LAYER = ("dropout", "gaussian_noise", "gaussian_dropout")


class Reference(_Strict):
    """A published result this variant replicates: shown beside the measured mean ± std by run and compare."""

    metric: Literal["test_error", "test_accuracy"] = Field(
        ..., description="test_error or test_accuracy, in percent."
    )
    value: float = Field(..., ge=0.0, le=100.0, description="The published value, in percent.")
    source: str = Field("", description="Where it comes from, e.g. 'Srivastava et al. 2014, Table 9'.")


class VariantConfig(_Strict):
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
                    raise ValueError(f"{key}: expected it unset with model.kind mlp (a cnn key), got {_show(value)}")
        else:
            if m.conv_filters is None:
                m.conv_filters = [32, 64]
            if m.kernel_size is None:
                m.kernel_size = 3
            rates = self.regularization.spatial_dropout
            if isinstance(rates, list) and len(rates) != len(m.conv_filters):
                raise ValueError(
                    f"regularization.spatial_dropout: expected {len(m.conv_filters)} rates (one per conv block "
                    f"in model.conv_filters), got {len(rates)}"
                )
        t = self.train
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


class VariantOverrides(_Strict):
    """A variant as written: any subset of the sections, each any subset of its keys (the rest inherited).

    Only used for the JSON Schema: variants are validated after merging with the defaults, as VariantConfig.
    """

    data: DataConfig | None = None
    model: ModelConfig | None = None
    regularization: RegularizationConfig | None = None
    train: TrainConfig | None = None
    reference: Reference | None = None


class OutputConfig(_Strict):
    """What a run writes besides its run folders' usual files."""

    tensorboard: bool = Field(
        False, description="TensorBoard logs in each run folder (tensorboard/), as run --tensorboard writes them."
    )


class StudyFile(_Strict):
    """The YAML file as written: defaults plus named variants of overrides. Used for the JSON Schema."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Study name; names the run folder.")
    description: str = Field("", description="Free text: what the study asks.")
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    regularization: RegularizationConfig = RegularizationConfig()
    train: TrainConfig = TrainConfig()
    output: OutputConfig = OutputConfig()
    variants: dict[str, VariantOverrides | None] = Field(
        default_factory=lambda: {"default": None},
        description="Variant name -> overrides of data/model/regularization/train. Empty means the defaults.",
    )
    sweep: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="Grid: dotted key -> list of values, e.g. regularization.l2: [0, 1.0e-4]. The cartesian "
        "product of all lists (times the hand-written variants, if any) becomes the variants. "
        "train.seeds: [...] here sets the seeds.",
    )


class Experiment(BaseModel):
    """A loaded study: its name, source, and resolved variants in file order."""

    name: str
    description: str = ""
    source: str = "<config>"
    variants: dict[str, VariantConfig]
    sweep_keys: list[str] = []
    output: OutputConfig = OutputConfig()


# ---------------------------------------------------------------------------------------------------------
# YAML with line numbers


def _line_map(text: str) -> dict[tuple[str, ...], int]:
    """Map each dotted path in a YAML document to the 1-based line of its key (or list item)."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                lines[sub] = key.start_mark.line + 1
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[(*path, str(i))] = item.start_mark.line + 1
                walk(item, (*path, str(i)))

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def _expected(err: dict[str, Any]) -> str:
    """Turn one pydantic error into the 'expected ...' half of our message."""
    kind, ctx, msg = err["type"], err.get("ctx") or {}, err["msg"]
    bounds = {
        "greater_than": "a number > {gt}",
        "greater_than_equal": "a number >= {ge}",
        "less_than": "a number < {lt}",
        "less_than_equal": "a number <= {le}",
    }
    if kind in bounds:
        return "expected " + bounds[kind].format(**ctx)
    simple = {
        "float_type": "a number",
        "float_parsing": "a number",
        "int_type": "a whole number",
        "int_parsing": "a whole number",
        "int_from_float": "a whole number",
        "bool_type": "true or false",
        "bool_parsing": "true or false",
        "string_type": "a string",
        "list_type": "a list",
        "dict_type": "a mapping",
        "model_type": "a mapping",
        "model_attributes_type": "a mapping",
        "missing": "a value (this key is required)",
        "string_pattern_mismatch": "letters, digits, '_', '.' or '-'",
        "finite_number": "a finite number",
        "union_tag_invalid": "a schedule kind: constant, step, exponential or cosine",
        "union_tag_not_found": "a mapping with a kind: constant, step, exponential or cosine",
    }
    if kind in simple:
        return "expected " + simple[kind]
    if kind == "literal_error":
        return "expected one of " + ctx.get("expected", "")
    if kind == "too_short":
        return f"expected at least {ctx.get('min_length', 1)} item(s)"
    if kind == "extra_forbidden":
        return "unknown key; check its spelling against `regbench schema` or the README's config reference"
    if kind == "value_error":
        text = str(ctx.get("error", msg))
        return text if text.startswith("expected") else "expected " + text
    return "expected " + msg[0].lower() + msg[1:]


def _show(value: Any) -> str:
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


def _submodel(model: type[BaseModel], path: tuple[str, ...]) -> type[BaseModel] | None:
    """The pydantic model found by walking ``path`` down from ``model`` (None if it leads elsewhere)."""
    for part in path:
        if part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        found = [
            a
            for a in getattr(annotation, "__args__", (annotation,))
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if not found:
            return None
        model = found[0]
    return model


def _error_lines(exc: ValidationError, root: type[BaseModel]) -> list[tuple[tuple[str, ...], str, str]]:
    """(location, 'expected ...', ', got ...') for each pydantic error, one per key."""
    out = []
    for err in exc.errors(include_url=False):
        # Drop union-branch markers such as 'EarlyStoppingConfig' or 'list[int]' from the location.
        loc = tuple(str(p) for p in err["loc"] if not (isinstance(p, str) and (p[:1].isupper() or "[" in p)))
        if "lr_schedule" in loc[:-1] and loc[loc.index("lr_schedule") + 1] in SCHEDULE_KINDS:  # the union's tag
            i = loc.index("lr_schedule") + 1
            loc = loc[:i] + loc[i + 1 :]
        got = "" if err["type"] == "missing" else f", got {_show(err.get('input'))}"
        text = _expected(err)
        if not loc and err["type"] == "value_error":  # cross-field checks name their key: "a.b: expected ..."
            key, _, rest = str(err["ctx"]["error"]).partition(": ")
            loc, text, got = tuple(key.split(".")), rest, ""
        elif err["type"] == "extra_forbidden":
            parent = _submodel(root, loc[:-1])
            allowed = ", ".join(parent.model_fields) if parent else ""
            text = f"unknown key; expected one of: {allowed}" if allowed else "unknown key"
        if any(loc == seen for seen, _, _ in out):
            continue
        out.append((loc, text, got))
    return out


def _line_number(message: str) -> int:
    """Sort key: a problem's line in the file (--set problems first)."""
    match = re.match(r"[^\n]*?:(\d+): ", message)
    return int(match.group(1)) if match and not message.startswith("--set") else 0


def _line_of(lines: dict[tuple[str, ...], int], path: tuple[str, ...], floor: int = 0) -> int | None:
    """Line of the longest prefix of ``path`` (at least ``floor + 1`` parts long) that the file spells out."""
    while len(path) > floor:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


# ---------------------------------------------------------------------------------------------------------
# Overrides


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _known_key(path: list[str]) -> bool:
    """True when a dotted path names a field of VariantConfig (early_stopping's fields included)."""
    parent = _submodel(VariantConfig, tuple(path[:-1]))
    return bool(path) and parent is not None and path[-1] in parent.model_fields


def parse_overrides(items: list[str]) -> list[tuple[list[str], Any]]:
    """Parse ``--set dotted.key=value`` items. Values are YAML (``0.5``, ``[0.3, 0]``, ``null``, ``true``).

    Raises:
        ConfigError: when an item has no ``=``, names an unknown key, or its value is not valid YAML.
    """
    parsed, problems = [], []
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--set {item}: expected dotted.key=value, e.g. --set train.epochs=2")
            continue
        path = key.split(".")
        if path[0] == "variants":
            ok = len(path) >= 4 and _known_key(path[2:])
        elif path[0] == "output":
            ok = len(path) == 2 and path[1] in OutputConfig.model_fields
        else:
            ok = _known_key(path)
        if not ok:
            problems.append(
                f"--set {key}: unknown key; expected a dotted key such as train.epochs, regularization.l2 "
                "or variants.<name>.train.epochs"
            )
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            problems.append(f"--set {key}: expected a YAML value, got {raw!r} ({exc.problem})")
            continue
        parsed.append((path, value))
    if problems:
        raise ConfigError(problems)
    return parsed


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        if not isinstance(tree.get(part), dict):
            tree[part] = {}
        tree = tree[part]
    tree[path[-1]] = value


def _has_path(tree: Any, path: list[str]) -> bool:
    for part in path:
        if isinstance(tree, list) and part.isdigit() and int(part) < len(tree):
            tree = tree[int(part)]
            continue
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


# ---------------------------------------------------------------------------------------------------------
# Sweeps

VARIANT_NAME = r"[A-Za-z0-9][A-Za-z0-9_.+=,-]*"


def _sweep_axes(sweep: Any) -> tuple[dict[str, list[Any]], list[tuple[str, str]]]:
    """Check a sweep section: known dotted keys mapped to non-empty lists. Returns (axes, problems)."""
    if not isinstance(sweep, dict):
        return {}, []  # absent, or a wrong type that StudyFile validation reports
    axes, problems = {}, []
    for key, values in sweep.items():
        key = str(key)
        if not _known_key(key.split(".")):
            problems.append((key, "unknown key; expected a dotted config key such as regularization.l2"))
        elif not isinstance(values, list):
            continue  # StudyFile's validation reports it
        elif not values:
            problems.append((key, "expected a non-empty list of values, got []"))
        else:
            axes[key] = values
    return axes, problems


def _value_label(value: Any) -> str:
    if isinstance(value, list):
        return "+".join(_value_label(v) for v in value)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", str(value))


def _expand(variants: dict[str, Any], sweep: dict[str, list[Any]]) -> tuple[dict[str, Any], dict[str, tuple[str, ...]]]:
    """Hand-written variants x the sweep grid. Grid variants are named from their values: ``l2=0.0001``
    (``dropout,l2=0.0001`` when crossed with a hand-written variant ``dropout``). Leaf names are used unless
    two swept keys share one. Returns the variant specs and, per grid variant, the keys the grid set.
    """
    if not sweep:
        return (variants or {"default": {}}), {}
    leaves = [k.split(".")[-1] for k in sweep]
    labels = [leaf if leaves.count(leaf) == 1 else key for leaf, key in zip(leaves, sweep, strict=True)]
    bases = variants or {"": {}}
    out: dict[str, Any] = {}
    swept: dict[str, tuple[str, ...]] = {}
    for base_name, spec in bases.items():
        for values in itertools.product(*sweep.values()):
            name = ",".join(f"{lbl}={_value_label(v)}" for lbl, v in zip(labels, values, strict=True))
            name = f"{base_name},{name}" if base_name else name
            tree = copy.deepcopy(spec) if isinstance(spec, dict) else {}
            for key, value in zip(sweep, values, strict=True):
                _set_path(tree, key.split("."), value)
            out[name] = tree
            swept[name] = tuple(sweep)
    return out, swept


# ---------------------------------------------------------------------------------------------------------
# Loading


def _parse(text: str, source: str) -> dict[str, Any]:
    """The YAML document as a mapping; a syntax error or a non-mapping is a ConfigError with its line."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError([f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{source}:1: config: expected a mapping of sections, got {_show(raw)}"])
    return raw


def _apply_overrides(raw: dict[str, Any], overrides: list[str]) -> set[tuple[str, ...]]:
    """Apply ``--set`` overrides in place: to the defaults, and to every variant that sets the same key itself,
    so that ``--set train.epochs=2`` means two epochs everywhere. Returns the overridden paths."""
    overridden: set[tuple[str, ...]] = set()
    for path, value in parse_overrides(overrides):
        overridden.add(tuple(path))
        _set_path(raw, path, value)
        if path[0] not in ("variants", "name", "description", "output"):
            for spec in (raw.get("variants") or {}).values():
                if isinstance(spec, dict) and _has_path(spec, path):
                    _set_path(spec, path, value)
    return overridden


class _Problems:
    """Every problem found in one file, each located: ``FILE:LINE: key: ...``, or ``--set key: ...`` when an
    override set the value."""

    def __init__(self, text: str, source: str, overridden: set[tuple[str, ...]]):
        self.lines, self.source, self.overridden = _line_map(text), source, overridden
        self.found: list[str] = []

    def line(self, path: tuple[str, ...], floor: int = 0) -> int:
        return _line_of(self.lines, path, floor) or 1

    def at(self, path: tuple[str, ...], text: str, got: str = "", floor: int = 0) -> None:
        if any(path[: len(o)] == o for o in self.overridden):
            self.found.append(f"--set {'.'.join(path)}: {text}{got}")
        else:
            self.found.append(f"{self.source}:{self.line(path, floor)}: {'.'.join(path)}: {text}{got}")

    def add(self, line: int, message: str) -> None:
        text = f"{self.source}:{line}: {message}"
        if text not in self.found:
            self.found.append(text)

    def raise_any(self) -> None:
        if self.found:
            raise ConfigError(sorted(self.found, key=_line_number))


def _variant(
    vname: str,
    spec: Any,
    defaults: dict[str, Any],
    swept: tuple[str, ...],
    implicit: bool,
    study_ok: bool,
    problems: _Problems,
) -> VariantConfig | None:
    """Validate one variant (its overrides merged onto the defaults), locating each problem where it was
    written: the variant's own key, the sweep line that produced the value, or the key itself for the implicit
    ``default`` variant. Returns None when it has problems."""
    prefix = ("variants", vname)
    if not re.fullmatch(VARIANT_NAME, vname):
        problems.add(
            problems.lines.get(prefix, 1),
            f"variants.{vname}: expected a name of letters, digits, '_', '.', '+', '-', '=' or ',' (it names a "
            f"folder), got {_show(vname)}",
        )
        return None
    spec = spec or {}
    if not isinstance(spec, dict):
        problems.add(problems.lines.get(prefix, 1), f"variants.{vname}: expected a mapping, got {_show(spec)}")
        return None
    unknown = [str(k) for k in spec if k not in VARIANT_KEYS]
    for key in unknown:
        problems.at((*prefix, key), f"unknown section; expected one of: {', '.join(VARIANT_KEYS)}")
    if unknown:
        return None
    try:
        return VariantConfig.model_validate(_deep_merge(defaults, spec))
    except ValidationError as exc:
        for loc, text, got in _error_lines(exc, VariantConfig):
            key = next((k for k in swept if ".".join(loc).startswith(k)), None)
            if key is not None:  # a value from the sweep grid
                problems.add(problems.lines.get(("sweep", key), 1), f"sweep.{key}: {text}{got}")
            elif _has_path(spec, list(loc)):
                problems.at((*prefix, *loc), text, got, floor=2)  # the variant's own override is wrong
            elif not study_ok and _has_path(defaults, list(loc)):
                continue  # a wrong default, already reported once
            elif implicit:  # the implicit 'default' variant: name the key only
                problems.at(loc, text, got)
            else:  # e.g. a list of dropout rates that no longer matches the variant's hidden_units
                line = _line_of(problems.lines, (*prefix, *loc), 2) or _line_of(problems.lines, loc)
                problems.add(line or problems.lines.get(prefix, 1), f"variants.{vname}: {'.'.join(loc)}: {text}{got}")
    return None


def load_text(text: str, source: str = "<config>", overrides: list[str] | None = None) -> Experiment:
    """Load a study from YAML text: parse, apply overrides, validate the defaults, expand the sweep, validate
    every variant, and report every problem at once. See :func:`load`."""
    raw = _parse(text, source)
    problems = _Problems(text, source, _apply_overrides(raw, overrides or []))

    study = None
    try:
        study = StudyFile.model_validate({k: v for k, v in raw.items() if k != "variants"})
    except ValidationError as exc:
        for loc, message, got in _error_lines(exc, StudyFile):
            problems.at(loc, message, got)

    variants_raw = raw.get("variants")
    if not isinstance(variants_raw, (dict, type(None))):
        problems.add(
            problems.lines.get(("variants",), 1),
            f"variants: expected a mapping of variant name -> overrides, got {_show(variants_raw)}",
        )
        variants_raw = {}
    sweep, sweep_problems = _sweep_axes(raw.get("sweep"))
    for key, message in sweep_problems:
        problems.at(("sweep", key), message)
    if "train.seeds" in sweep:
        raw.setdefault("train", {})
        if isinstance(raw["train"], dict):
            raw["train"]["seeds"] = sweep.pop("train.seeds")
    implicit = not raw.get("variants") and not sweep
    variants_raw, swept = _expand(variants_raw or {}, sweep)

    defaults = {k: raw[k] for k in SECTIONS if k in raw}
    variants: dict[str, VariantConfig] = {}
    for vname, spec in variants_raw.items():
        cfg = _variant(str(vname), spec, defaults, swept.get(str(vname), ()), implicit, study is not None, problems)
        if cfg is not None:
            variants[str(vname)] = cfg
    problems.raise_any()
    if study is None:  # unreachable: a study that failed validation has reported problems
        raise ConfigError([f"{source}: invalid study"])
    return Experiment(
        name=study.name,
        description=study.description,
        source=source,
        variants=variants,
        sweep_keys=list(sweep),
        output=study.output,
    )


def load(path: str | Path, overrides: list[str] | None = None) -> Experiment:
    """Load and validate a study file.

    Args:
        path: The YAML file.
        overrides: ``dotted.key=value`` strings applied before validation (``--set``).

    Returns:
        The experiment with every variant fully resolved.

    Raises:
        ConfigError: listing every problem found, each as ``FILE:LINE: key: expected ..., got ...``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file; expected a study YAML such as configs/dropout.yaml"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); expected a study "
             "YAML file such as configs/dropout.yaml"]
        ) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    return load_text(text, source=str(path), overrides=overrides)


def resolved_dict(experiment: Experiment) -> dict[str, Any]:
    """The experiment as a plain mapping, every default filled in: what a run folder records."""
    return {
        "name": experiment.name,
        "description": experiment.description,
        "source": experiment.source,
        "variants": {name: v.model_dump(mode="json") for name, v in experiment.variants.items()},
    }


def json_schema() -> dict[str, Any]:
    """JSON Schema of the study file format, from the same models that validate it."""
    schema = StudyFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "regbench study"
    return schema
