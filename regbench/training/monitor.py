"""Which epoch is best, when to stop early, when a run has diverged, and what a run keeps while it trains: one
:class:`Monitor` and one :class:`RunWatch` for runs trained alone and for the branches of a fused model, so that
the two can never disagree.

The early-stopping rule is Keras' own (``keras/src/callbacks/early_stopping.py`` and ``monitor_callback.py`` as
of Keras 3.15: ``_is_improvement`` is ``monitor_op(value - min_delta, reference)``), written once here so that a
change in Keras cannot make fused branches stop elsewhere than runs trained alone. Values are compared as Python
floats. Nothing here imports Keras: the weights a run keeps are whatever its trainer's snapshot returns.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import Any

from regbench.config.choices import BEST_EPOCH_MONITOR
from regbench.config.schema import EarlyStoppingConfig, VariantConfig


class Direction(enum.Enum):
    MIN = "min"  # a loss: lower is better
    MAX = "max"  # an accuracy: higher is better


class Monitor:
    """A watched validation quantity: which way is better, and by how much a value must beat a reference
    (``min_delta``) to count as an improvement."""

    def __init__(self, name: str, min_delta: float = 0.0):
        self.name, self.min_delta = name, min_delta
        self.direction = Direction.MAX if name.endswith("accuracy") else Direction.MIN

    @classmethod
    def of(cls, cfg: VariantConfig) -> Monitor:
        """The quantity that picks a run's best epoch: early stopping's monitor, else the validation data loss."""
        es = cfg.regularization.early_stopping
        return cls(es.monitor if es else BEST_EPOCH_MONITOR)

    def is_improvement(self, value: float, reference: float | None) -> bool:
        """Whether ``value`` beats ``reference`` (None: nothing yet, so it does) by more than ``min_delta``."""
        if reference is None:
            return True
        if self.direction is Direction.MAX:
            return value - self.min_delta > reference
        return value + self.min_delta < reference

    def best_epoch(self, history: list[dict[str, float]]) -> int:
        """1-based epoch with the best value (the first one on ties); NaNs never win; the last epoch when none is
        finite."""
        best, at = None, len(history)
        for epoch, row in enumerate(history, start=1):
            value = row.get(self.name, math.nan)
            if math.isfinite(value) and self.is_improvement(value, best):
                best, at = value, epoch
        return at


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


Snapshot = Callable[[], Any]  # the run's weights now, as its trainer keeps them


class KeptBest:
    """The weights of the epoch with the best monitored value so far (``output.save_model: best``)."""

    def __init__(self, monitor: Monitor):
        self.monitor = monitor
        self.value: float | None = None
        self.weights: Any = None

    def offer(self, value: float, snapshot: Snapshot) -> None:
        if math.isfinite(value) and self.monitor.is_improvement(value, self.value):
            self.value, self.weights = value, snapshot()


class Stopper:
    """Early stopping for one run: Keras' ``EarlyStopping`` rule, fed one epoch at a time.

    An epoch improves when its value beats the best so far by more than ``min_delta``; after ``patience`` epochs
    without one (counted from ``start_from_epoch``) training stops. With ``restore_best_weights`` the weights of
    the best epoch are kept (those of the first watched epoch until one improves).
    """

    def __init__(self, config: EarlyStoppingConfig):
        self.config = config
        self.monitor = Monitor(config.monitor, config.min_delta)
        self.best: float | None = None
        self.best_epoch: int | None = None  # 0-based, as Keras counts
        self.best_weights: Any = None
        self.wait = 0

    def update(self, epoch: int, value: float | None, weights: Snapshot) -> bool:
        """Take epoch ``epoch``'s (0-based) monitored value; return True when training should stop now.
        ``weights()`` snapshots the current weights; it is called only when they are to be kept."""
        es = self.config
        if value is None or epoch < es.start_from_epoch:
            return False
        if es.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = weights(), epoch
        self.wait += 1
        if self.monitor.is_improvement(value, self.best):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if es.restore_best_weights:
                self.best_weights = weights()
            return False
        return self.wait >= es.patience and epoch > 0

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "best_weights": self.best_weights, "wait": self.wait}

    def restore(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.best_weights = state["best_weights"]

    @property
    def restores(self) -> bool:
        """Whether the run ends with the best epoch's weights rather than its last ones."""
        return self.config.restore_best_weights and self.best_weights is not None


EpochHook = Callable[[int, dict[str, float]], None]  # (1-based epoch, the epoch's history row)


class RunWatch:
    """What one run keeps while it trains, alone or as a fused branch: its history, early stopping, whether it
    diverged, the weights it stopped with and (``keep_best``) those of its best epoch. Fed one row per epoch by
    its trainer (:meth:`see`), which stops the run when it says so.

    A diverged run stops at once: early stopping is not asked on that epoch, and it never ends with restored
    weights (its numbers are those of the model that blew up, marked diverged)."""

    def __init__(self, cfg: VariantConfig, num_classes: int, keep_best: bool = False, hook: EpochHook | None = None):
        self.cfg, self.num_classes, self.hook = cfg, num_classes, hook
        es = cfg.regularization.early_stopping
        self.stopper = Stopper(es) if es is not None else None
        self.best = KeptBest(Monitor.of(cfg)) if keep_best else None
        self.history: list[dict[str, float]] = []
        self.active, self.diverged = True, False
        self.final: Any = None  # the weights it stopped with, while others of its unit train on

    def see(self, epoch: int, row: dict[str, float], snapshot: Snapshot) -> bool:
        """Take 0-based ``epoch``'s history row; True when this run stops now (then it is no longer active)."""
        self.history.append(row)
        if self.best is not None:
            self.best.offer(row.get(self.best.monitor.name, math.nan), snapshot)
        if self.hook is not None:
            self.hook(epoch + 1, row)
        loss = row.get("loss", math.nan)
        if diverged(loss, row.get("data_loss", loss), self.num_classes):
            self.diverged = True
        elif self.stopper is None or not self.stopper.update(epoch, row.get(self.stopper.monitor.name), snapshot):
            return False
        self.active, self.final = False, snapshot()
        return True

    @property
    def restored(self) -> bool:
        """Whether the run ends with its best epoch's weights (early stopping's restore_best_weights)."""
        return self.stopper is not None and self.stopper.restores and not self.diverged

    def end_weights(self) -> Any:
        """The weights the run ends with, when they are not its trainer's current ones: the best epoch's
        (restored), or those it stopped with; None: the current ones."""
        return self.stopper.best_weights if self.restored else self.final

    def saved_weights(self, end: Any) -> Any:
        """The weights its model.keras holds: the best epoch's with ``keep_best`` (save_model: best), else ``end``."""
        kept = self.best.weights if self.best is not None and not self.restored else None
        return end if kept is None else kept

    def best_epoch(self) -> int:
        """The 1-based epoch the run reports as best: the one whose weights it ends with when early stopping
        restored them (min_delta and start_from_epoch count there), else the epoch with the best value."""
        if self.restored and self.stopper.best_epoch is not None:
            return self.stopper.best_epoch + 1
        return Monitor.of(self.cfg).best_epoch(self.history)

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of it (training.checkpoint)."""
        kept = None if self.best is None else {"value": self.best.value, "weights": self.best.weights}
        return {
            "history": self.history,
            "active": self.active,
            "diverged": self.diverged,
            "final": self.final,
            "stopper": None if self.stopper is None else self.stopper.state(),
            "best": kept,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.history = [dict(row) for row in state["history"]]
        self.active, self.diverged, self.final = bool(state["active"]), bool(state["diverged"]), state["final"]
        if self.stopper is not None:
            self.stopper.restore(state["stopper"])
        if self.best is not None:
            self.best.value, self.best.weights = state["best"]["value"], state["best"]["weights"]
