"""The study-wide sections — ``output``, ``analysis``, ``execution`` and ``search`` — the study file as written
(:class:`StudyFile`, for the JSON Schema) and a loaded study (:class:`Experiment`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from regbench.config.base import MAX_SEED, Strict
from regbench.config.choices import ALPHA, TEST, SaveMode, TestKind
from regbench.config.variant import (
    DataConfig,
    ModelConfig,
    RegularizationConfig,
    TrainConfig,
    VariantConfig,
    VariantOverrides,
)


class OutputConfig(Strict):
    """What a run writes besides its run folders' usual files."""

    tensorboard: bool = Field(
        False, description="TensorBoard logs in each run folder (tensorboard/), as run --tensorboard writes them."
    )
    save_model: SaveMode = Field(
        SaveMode.NONE,
        description="Write each run's model as model.keras in its run folder, loadable with plain "
        "keras.saving.load_model, taking raw 0..255 images and giving class probabilities: last (the weights the "
        "test set was evaluated with) or best (the best validation epoch's); none.",
    )
    checkpoint: bool = Field(
        True,
        description="Keep a checkpoint of each run (and fused unit) after every epoch, in the experiment folder's "
        ".checkpoints/, so that --resume continues an interrupted run from its last finished epoch and ends exactly "
        "as if it had not stopped; false: an interrupted run trains again from its first epoch.",
    )
    keep_checkpoint: bool = Field(
        False,
        description="Keep each run's checkpoint, its state at the end of training (weights, optimizer, history), "
        "after the run is written; by default it is deleted then.",
    )


class AnalysisConfig(Strict):
    """How the study's comparisons are judged (the verdict of each row against the baseline), and whether seeds
    are added until each is decided."""

    margin: float | None = Field(
        None,
        gt=0,
        le=1e6,
        description="Equivalence margin of the tested metric, in its column's unit (percentage points for test "
        "accuracy): a difference within ±margin is equivalent. null: the metric's default (0.2 pp for test "
        "accuracy). --margin replaces it.",
    )
    test: TestKind = Field(
        TEST,
        description="How a row is tested against the baseline: auto (by the design: a paired t-test where the "
        "row's runs pair seed by seed with the baseline's, the same seeds from one folder, which is valid whatever "
        "their correlation; else Welch's), paired (over the seeds both share) or welch (never paired).",
    )
    alpha: float = Field(
        ALPHA,
        gt=0,
        lt=0.5,
        description="The chance of any wrong verdict in a table, difference and equivalence verdicts of every row "
        "together: each row's interval is at 1 - alpha / rows. With max_seeds each round's looks share it through "
        "Pocock's group-sequential boundary.",
    )
    max_seeds: int | None = Field(
        None,
        ge=2,
        le=1000,
        description="Add seeds in rounds (doubling the seeds each round) until every comparison is decided or "
        "each variant has this many; every round decides at Pocock's level for the rounds planned, and a "
        "comparison once decided stays decided (its variant gets no more seeds). run --until-decided N sets it.",
    )


def seed_rounds(first: list[int], most: int | None) -> list[list[int]]:
    """The seeds of each round of a study that adds seeds until decided: its own, then twice as many each round
    (new seeds after the largest so far), up to ``most``; one round without ``most``."""
    rounds = [list(first)]
    while most is not None and len(rounds[-1]) < most:
        current = rounds[-1]
        grow = min(most, 2 * len(current)) - len(current)
        rounds.append(current + list(range(max(current) + 1, max(current) + 1 + grow)))
    return rounds


class ExecutionConfig(Strict):
    """Where a study's runs execute, when the command line does not say."""

    gpus_per_task: float | None = Field(
        None,
        ge=0,
        le=64,
        description="On a Ray cluster (--executor ray): GPUs each fused unit claims; 0 trains on CPUs; null: one "
        "when the cluster has GPUs. --gpus-per-task replaces it.",
    )


class SearchRange(Strict):
    """A numeric range of a searched key: floats, or integers when both ends are whole numbers and the key takes
    integers; ``log`` samples on a log scale."""

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> SearchRange:
        if not self.low < self.high:
            raise ValueError(f"expected low < high, got low {self.low} and high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")
        return self


class SearchConfig(Strict):
    """An Optuna search: trials asked in batches, each batch of trials trained together (fused where it can be), judged
    on a validation metric, never on the test set."""

    sampler: Literal["tpe", "random"] = Field("tpe", description="Optuna's TPE sampler, or random sampling.")
    trials: int = Field(..., ge=1, le=10000, description="Trials in all.")
    batch: int = Field(8, ge=1, le=256, description="Trials asked together and trained together (fused).")
    objective: Literal["val_accuracy", "val_data_loss", "val_loss"] = Field(
        "val_accuracy",
        description="The validation metric of the epoch a run ends with (its best, when early stopping restores "
        "it), mean over the trial's seeds.",
    )
    direction: Literal["maximize", "minimize"] = Field("maximize", description="Whether higher objective wins.")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="The sampler's seed: the same study asks the same trials.")
    space: dict[str, SearchRange | list[Any]] = Field(
        ...,
        min_length=1,
        description="Dotted config key -> {low, high, log} for numbers, or a list of choices, e.g. "
        "regularization.l2: {low: 1.0e-6, high: 1.0e-2, log: true}; train.optimizer: [adam, sgd].",
    )


class StudyFile(Strict):
    """The YAML file as written: defaults plus named variants of overrides. Used for the JSON Schema."""

    name: str = Field(
        ...,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        max_length=200,
        description="Study name; names the run folder (with the time it started), so at most 200 characters.",
    )
    description: str = Field("", description="Free text: what the study asks.")
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    regularization: RegularizationConfig = RegularizationConfig()
    train: TrainConfig = TrainConfig()
    output: OutputConfig = OutputConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    execution: ExecutionConfig = ExecutionConfig()
    search: SearchConfig | None = None
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
    analysis: AnalysisConfig = AnalysisConfig()
    execution: ExecutionConfig = ExecutionConfig()
    search: SearchConfig | None = None
    defaults: dict[str, Any] = {}  # the study's sections as one resolved variant (JSON): what a trial starts from
    rounds: list[list[int]] = [[]]  # seed_rounds of the study as written: its seeds, then each added round's

    @property
    def level(self) -> float:
        """The error budget of each look at the study's table: alpha, or with rounds of seeds Pocock's nominal level
        for the rounds planned (analysis.stats.sequential_level)."""
        from regbench.analysis.stats import sequential_level

        return sequential_level(tuple(len(seeds) for seeds in self.rounds), self.analysis.alpha)
