"""What metrics.json holds: the typed record of one run, checked when written and when read (format 2 on).
The files of a folder are listed in :mod:`regbench.store.layout`; :mod:`regbench.store.writer` writes them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]  # an accuracy


class RunMetrics(BaseModel):
    """What a trainer reports for one run: the body of metrics.json. Both trainers (plain and fused) build it
    with training.assemble_metrics; unknown extra keys are kept, so a newer writer's additions survive."""

    model_config = ConfigDict(extra="allow")

    seed: int = Field(ge=0)
    status: Literal["finished", "diverged"]
    test_accuracy: Fraction | None  # None: NaN (a diverged run)
    test_data_loss: float | None
    test_loss: float | None
    train_accuracy: Fraction | None
    train_data_loss: float | None
    generalization_gap: float | None = Field(ge=-1.0, le=1.0)
    monitor: str
    best_epoch: int = Field(ge=0)
    best_monitor_value: float | None = None
    epochs_run: int = Field(ge=0)
    stopped_epoch: int = Field(ge=0)
    stopped_early: bool
    restored_best_weights: bool
    train_time_s: float = Field(ge=0.0)
    params: int = Field(ge=0)
    weights: dict[str, Any]
    runtime: dict[str, str] = {}  # training.results.runtime(): backend, versions, batch order (format 2)
    fused: dict[str, Any] | None = None  # set when trained as a branch of a fused model
    data: dict[str, str] | None = None  # where the data came from and their sha256 (Splits.identity)
    resumed_from_epoch: int | None = Field(None, ge=1)  # continued from its checkpoint after this epoch (--resume)


class RunRecord(RunMetrics):
    """metrics.json as written: the run's metrics plus its study, variant, resolved config and format version."""

    format: int
    experiment: str
    variant: str
    run_id: str | None = None
    config: dict[str, Any]


FORMAT_VERSION = 3  # 2: runtime (backend, versions, batch order), lr in history.csv, max_unit_norm;
# 3: data (source, sha256), and initial weights and random streams seeded per layer (common random numbers)
