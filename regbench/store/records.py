"""The typed records of an experiment folder: a run's metrics as a trainer makes them (:class:`RunMetrics`), as
metrics.json holds them (:class:`RunRecord`, checked when written and when read), and what a folder's config.yaml
and environment.json say about all of its runs (:class:`ExperimentRecord`). Nothing outside :mod:`regbench.store`
reads a run's results by string key: readers get these types, whatever format the folder was written in.

The files of a folder are listed in :mod:`regbench.store.layout`; :mod:`regbench.store.writer` writes them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from regbench.store.files import json_safe

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]  # an accuracy

MOST_EPOCHS = 10_000  # train.epochs' bound: a record claiming more is damaged

FORMAT_VERSION = 3  # 2: runtime (backend, versions, batch order), lr in history.csv, max_unit_norm;
# 3: data (source, sha256), and initial weights and random streams seeded per layer (common random numbers)


class Status(enum.Enum):
    """How a run ended. A record holds a trained run (finished or diverged); a failed run has no record, only its
    error (execution.outcome.Outcome, error.json)."""

    FINISHED = "finished"  # trained to its last epoch or stopped early
    DIVERGED = "diverged"  # trained, but its loss became NaN or exploded (its metrics say so)
    FAILED = "failed"  # raised: no metrics, an error and its traceback

    def trained(self) -> bool:
        return self is not Status.FAILED


class _Open(BaseModel):
    """Unknown extra keys are kept, so that a newer writer's additions survive a read and a rewrite."""

    model_config = ConfigDict(extra="allow")


class LayerWeights(_Open):
    """One Dense or conv kernel's statistics (training.results.weight_stats)."""

    l1_norm: float
    l2_norm: float
    max_unit_norm: float | None = None  # the largest L2 norm of one unit's incoming weights (format 2 on)
    near_zero_share: float
    size: int


class Histogram(_Open):
    """Counts of |w| over every kernel in log-spaced bins."""

    edges: list[float]
    counts: list[int]
    below_first_edge: int | None = None


class WeightStats(_Open):
    """Every kernel's statistics, their totals and a magnitude histogram."""

    layers: dict[str, LayerWeights]
    near_zero_share: float
    l1_norm: float
    l2_norm: float
    near_zero_threshold: float | None = None
    magnitude_histogram: Histogram | None = None

    @property
    def max_unit_norm(self) -> float | None:
        """The largest unit norm over all layers (what max-norm bounds); None when a layer does not record it."""
        norms = [layer.max_unit_norm for layer in self.layers.values()]
        return max(norms) if norms and None not in norms else None


class DataIdentity(_Open):
    """Where a run's data came from, and the sha256 of the arrays as loaded (data.splits.Splits.identity)."""

    source: str
    sha256: str


class FusedInfo(_Open):
    """How a run was trained as a branch of a fused model."""

    branches: int
    batch_orders: int
    wall_time_s: float | None = None  # the whole unit's training time; the run's train_time_s is its share


# Optional parts of a record that are left out of metrics.json when a run has none.
OMITTED_WHEN_NONE = ("fused", "resumed_from_epoch", "data", "device", "run_id")


class RunMetrics(_Open):
    """What a trainer reports for one run (training.results.run_metrics): the body of metrics.json. Every field is
    set when the record is made, in the worker that trained the run."""

    seed: int = Field(ge=0, le=2**32 - 1)
    status: Status
    test_accuracy: Fraction | None  # None: NaN (a diverged run)
    test_data_loss: float | None
    test_loss: float | None
    train_accuracy: Fraction | None
    train_data_loss: float | None
    generalization_gap: float | None = Field(ge=-1.0, le=1.0)
    monitor: str
    best_epoch: int = Field(ge=0, le=MOST_EPOCHS)
    best_monitor_value: float | None = None
    epochs_run: int = Field(ge=0, le=MOST_EPOCHS)
    stopped_epoch: int = Field(ge=0, le=MOST_EPOCHS)
    stopped_early: bool
    restored_best_weights: bool
    train_time_s: float = Field(ge=0.0)
    params: int = Field(ge=0, le=10**13)
    weights: WeightStats
    runtime: dict[str, str] = {}  # training.results.runtime(): backend, versions, batch order (format 2)
    fused: FusedInfo | None = None  # set when trained as a branch of a fused model
    # continued from its checkpoint after this epoch (--resume)
    resumed_from_epoch: int | None = Field(None, ge=1, le=MOST_EPOCHS)
    data: DataIdentity | None = None  # where the data came from and their sha256
    device: dict[str, Any] | None = None  # where a Ray task trained it (execution.ray_cluster)
    run_id: str | None = None  # store.identity.run_id of its config and seed

    @model_validator(mode="before")
    @classmethod
    def _finite(cls, data: Any) -> Any:
        """NaN and infinities are stored as null (strict JSON), so a record validates as it reads back."""
        return json_safe(data) if isinstance(data, dict) else data

    @field_validator("status")
    @classmethod
    def _trained(cls, status: Status | None) -> Status | None:
        if status is not None and not status.trained():
            raise ValueError("expected finished or diverged: a failed run has no record")
        return status


class RunRecord(RunMetrics):
    """metrics.json as written: the run's metrics plus its study, variant, resolved config and format version."""

    format: int
    experiment: str
    variant: str
    config: dict[str, Any]

    @classmethod
    def of(cls, metrics: RunMetrics, experiment: str, variant: str, config: dict[str, Any]) -> RunRecord:
        return cls.model_validate(
            {
                "format": FORMAT_VERSION,
                "experiment": experiment,
                "variant": variant,
                **metrics.model_dump(),
                "config": config,
            }
        )

    def as_json(self) -> dict[str, Any]:
        """The record as metrics.json holds it: the header first, the config last, absent parts left out."""
        body = self.model_dump(mode="json", exclude={"format", "experiment", "variant", "config"})
        for name in OMITTED_WHEN_NONE:
            if body.get(name) is None:
                body.pop(name, None)
        head = {"format": self.format, "experiment": self.experiment, "variant": self.variant}
        return {**head, **body, "config": self.config}


# Format 1 records (the first releases) were not checked when written: read them with every result optional.
LegacyRunRecord = create_model(
    "LegacyRunRecord",
    __base__=RunRecord,
    **{name: (info.annotation | None, None) for name, info in RunMetrics.model_fields.items()},
)


@dataclass(frozen=True)
class TrainedRun:
    """What training one run gives the writer: its metrics, its history (one row per epoch) and, when the study
    saves models, its model.keras file."""

    metrics: RunMetrics
    history: list[dict[str, float]]
    model: bytes | None = None


@dataclass(frozen=True)
class Judging:
    """How a study judges its runs, as its config.yaml records it; None for what an older folder does not."""

    margin: float | None = None  # analysis.margin
    level: float | None = None  # analysis.level: the level each verdict is decided at
    test: str | None = None  # analysis.test: auto, welch or paired
    searched: bool = False  # a search's folder (config.yaml records a search)
    rounds: bool = False  # seeds added in rounds (analysis.max_seeds): level is each look's share of alpha


@dataclass(frozen=True)
class ExperimentRecord:
    """What an experiment folder's config.yaml and environment.json say about all of its runs, read once per
    folder (store.reader.read_experiment). Empty fields: the file is missing or unreadable."""

    name: str | None = None  # the study's name
    variants: tuple[str, ...] = ()  # in file order
    judging: Judging = Judging()
    runtime: dict[str, str] | None = None  # what trained its runs (environment.json), rebuilt for older folders
    provenance: dict[str, Any] | None = None  # where its numbers came from (study.environment.provenance)
    environment: dict[str, Any] = field(default_factory=dict)  # environment.json as written
    decided: dict[str, tuple[int, ...]] = field(default_factory=dict)  # rounds.json: row -> seeds that decided it

    def order_of(self, variant: str) -> int:
        """A variant's position in config.yaml (file order); after every named one when it is not there."""
        return self.variants.index(variant) if variant in self.variants else len(self.variants)
