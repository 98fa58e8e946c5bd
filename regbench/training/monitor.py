"""TODO."""

from __future__ import annotations

import math

from regbench.config.schema import VariantConfig


def diverged(loss: float, num_classes: int = 10) -> bool:
    """The divergence rule of both trainers: an epoch's training loss that is NaN, infinite, or above 100 times
    the cross-entropy of a uniform guess over the data's classes."""
    return not math.isfinite(loss) or loss > 100 * math.log(num_classes)


def monitor_of(cfg: VariantConfig) -> tuple[str, str]:
    """The validation quantity that picks the best epoch, and whether lower ('min') or higher is better."""
    es = cfg.regularization.early_stopping
    monitor = es.monitor if es else "val_data_loss"
    return monitor, ("max" if monitor.endswith("accuracy") else "min")


def best_epoch(history: list[dict[str, float]], monitor: str, mode: str) -> int:
    """1-based epoch with the best monitored value (the first one on ties); NaNs never win."""
    values = [h.get(monitor, math.nan) for h in history]
    finite = [(v if mode == "min" else -v, i) for i, v in enumerate(values) if math.isfinite(v)]
    return min(finite)[1] + 1 if finite else len(history)
