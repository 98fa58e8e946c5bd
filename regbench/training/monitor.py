"""Which epoch is best, when to stop early, and when a run has diverged: one rule for runs trained alone and for
the branches of a fused model, so that the two can never disagree.

The early-stopping rule is Keras' own (``keras/src/callbacks/early_stopping.py`` and ``monitor_callback.py`` as
of Keras 3.15), written once here so that a change in Keras cannot make fused branches stop elsewhere than runs
trained alone. Values are compared as Python floats.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from regbench.config.schema import EarlyStoppingConfig, VariantConfig


def direction(monitor: str) -> str:
    """'max' for an accuracy, 'min' for a loss."""
    return "max" if monitor.endswith("accuracy") else "min"


def monitor_of(cfg: VariantConfig) -> tuple[str, str]:
    """The validation quantity that picks the best epoch, and whether lower ('min') or higher is better."""
    es = cfg.regularization.early_stopping
    monitor = es.monitor if es else "val_data_loss"
    return monitor, direction(monitor)


def divergence_threshold(num_classes: int) -> float:
    """The epoch's mean training cross-entropy above which a run has diverged: four times a uniform guess's
    (ln C), and never above 10. The backends clip probabilities differently: TensorFlow's cross-entropy of a
    blown-up model reaches 1e9, JAX's saturates below -ln(1e-7) = 16.1; both pass 10, and a run that learns
    anything stays near or below ln C."""
    return min(4 * math.log(num_classes), 10.0)


def diverged(loss: float, data_loss: float, num_classes: int = 10) -> bool:
    """An epoch whose training loss or cross-entropy is NaN or infinite, or whose cross-entropy is above
    :func:`divergence_threshold`: the same verdict on every backend, alone and fused."""
    finite = math.isfinite(loss) and math.isfinite(data_loss)
    return not finite or data_loss > divergence_threshold(num_classes)


def best_epoch(history: list[dict[str, float]], monitor: str, mode: str) -> int:
    """1-based epoch with the best monitored value (the first one on ties); NaNs never win."""
    values = [h.get(monitor, math.nan) for h in history]
    finite = [(v if mode == "min" else -v, i) for i, v in enumerate(values) if math.isfinite(v)]
    return min(finite)[1] + 1 if finite else len(history)


def chosen_epoch(history: list[dict[str, float]], cfg: VariantConfig, stopper: Stopper | None, restored: bool) -> int:
    """The 1-based epoch a run reports as best: the one whose weights it ends with when early stopping restored
    them (min_delta and start_from_epoch count there), else the epoch with the best monitored value."""
    if restored and stopper is not None and stopper.best_epoch is not None:
        return stopper.best_epoch + 1
    return best_epoch(history, *monitor_of(cfg))


class Stopper:
    """Early stopping for one run: Keras' ``EarlyStopping`` rule, fed one epoch at a time.

    An epoch improves when its value beats the best so far by more than ``min_delta``; after ``patience`` epochs
    without one (counted from ``start_from_epoch``) training stops. With ``restore_best_weights`` the weights of
    the best epoch are kept (those of the first watched epoch until one improves).
    """

    def __init__(self, config: EarlyStoppingConfig):
        self.config = config
        self.mode = direction(config.monitor)
        self.best: float | None = None
        self.best_epoch: int | None = None  # 0-based, as Keras counts
        self.best_weights: Any = None
        self.wait = 0

    def improves(self, value: float, reference: float | None) -> bool:
        if reference is None:
            return True
        delta = self.config.min_delta
        return value - delta > reference if self.mode == "max" else value + delta < reference

    def update(self, epoch: int, value: float | None, weights: Callable[[], Any]) -> bool:
        """Take epoch ``epoch``'s (0-based) monitored value; return True when training should stop now.
        ``weights()`` snapshots the current weights; it is called only when they are to be kept."""
        es = self.config
        if value is None or epoch < es.start_from_epoch:
            return False
        if es.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = weights(), epoch
        self.wait += 1
        if self.improves(value, self.best):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if es.restore_best_weights:
                self.best_weights = weights()
            return False
        return self.wait >= es.patience and epoch > 0

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps (training.checkpoint)."""
        return {"best": self.best, "best_epoch": self.best_epoch, "best_weights": self.best_weights, "wait": self.wait}

    def restore(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.best_weights = state["best_weights"]

    @property
    def restores(self) -> bool:
        """Whether the run ends with the best epoch's weights rather than its last ones."""
        return self.config.restore_best_weights and self.best_weights is not None
