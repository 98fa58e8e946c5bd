"""The closed vocabularies of a study file, as enums: the names users write, checked by the schema and by the
command line's options. Light (no pydantic): the command line declares its options with them at import."""

from __future__ import annotations

import enum


class TestKind(str, enum.Enum):
    """How a row is tested against its baseline (analysis.test, --paired/--welch)."""

    __test__ = False  # not a pytest test class

    AUTO = "auto"  # by the design: paired where the runs pair by seed, else Welch's (analysis.verdicts)
    WELCH = "welch"  # independent samples
    PAIRED = "paired"  # per-seed differences of the runs both share


class SaveMode(str, enum.Enum):
    """Which weights a run's model.keras holds (output.save_model)."""

    NONE = "none"
    LAST = "last"  # the weights the test set was evaluated with
    BEST = "best"  # the best validation epoch's


# Defaults that readers of old folders need as well as the schema (config.schema uses these): in one place.
ALPHA = 0.05  # analysis.alpha: the chance of any wrong verdict a table accepts
TEST = TestKind.AUTO  # analysis.test
PRIMARY_METRIC = "test_accuracy"  # what a study's verdicts are about; other metrics' verdicts are exploratory
DATASET = "mnist"  # data.dataset
BEST_EPOCH_MONITOR = "val_data_loss"  # early_stopping.monitor, and what picks the best epoch without it
