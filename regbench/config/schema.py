"""Typed study configs: the one schema of a study file, in two modules by what the sections apply to —
:mod:`regbench.config.variant` (what one run uses: data, model, regularization, train, reference) and
:mod:`regbench.config.study` (study-wide: output, analysis, execution, search; the file and the loaded study).

A study file has the sections ``name``, ``data``, ``model``, ``regularization`` and ``train`` (defaults for
every variant) and ``variants``: a mapping from variant name to overrides of those sections. Defaults live
in the pydantic models and nowhere else (the few that readers of old folders need too are in
:mod:`regbench.config.choices`); a YAML file is a diff against them.

Every problem in a file is reported at once, each as ``FILE:LINE: dotted.key: expected ..., got ...``.
"""

from regbench.config.base import MAX_SEED, show_value
from regbench.config.study import (
    AnalysisConfig,
    ExecutionConfig,
    Experiment,
    OutputConfig,
    SearchConfig,
    SearchRange,
    StudyFile,
    seed_rounds,
)
from regbench.config.variant import (
    PER_LAYER,
    SCHEDULE_KINDS,
    SECTIONS,
    VARIANT_KEYS,
    AugmentationConfig,
    ConstantSchedule,
    CosineSchedule,
    DataConfig,
    EarlyStoppingConfig,
    ExponentialSchedule,
    ModelConfig,
    Reference,
    RegularizationConfig,
    Schedule,
    StepSchedule,
    TrainConfig,
    VariantConfig,
    VariantOverrides,
)

__all__ = [
    "MAX_SEED",
    "PER_LAYER",
    "SCHEDULE_KINDS",
    "SECTIONS",
    "VARIANT_KEYS",
    "AnalysisConfig",
    "AugmentationConfig",
    "ConstantSchedule",
    "CosineSchedule",
    "DataConfig",
    "EarlyStoppingConfig",
    "ExecutionConfig",
    "Experiment",
    "ExponentialSchedule",
    "ModelConfig",
    "OutputConfig",
    "Reference",
    "RegularizationConfig",
    "Schedule",
    "SearchConfig",
    "SearchRange",
    "StepSchedule",
    "StudyFile",
    "TrainConfig",
    "VariantConfig",
    "VariantOverrides",
    "seed_rounds",
    "show_value",
]
