"""What executing a run gives back, whatever executed it: a typed outcome with a status (Hydra's ``JobReturn``)."""

from __future__ import annotations

import traceback as tb
from collections.abc import Callable
from dataclasses import dataclass

from regbench.store.records import Status, TrainedRun

__all__ = ["EpochHook", "Outcome", "Status"]


@dataclass(frozen=True)
class Outcome:
    status: Status
    run: TrainedRun | None = None  # the trained run (metrics, history, model.keras), unless it failed
    error: str = ""  # "ExceptionType: message", when failed
    traceback: str = ""

    @classmethod
    def trained(cls, run: TrainedRun) -> Outcome:
        return cls(run.metrics.status, run)

    @classmethod
    def failed(cls, exc: BaseException | str, with_traceback: bool = True) -> Outcome:
        error = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        return cls(Status.FAILED, error=error, traceback=tb.format_exc() if with_traceback else "")


EpochHook = Callable[[str, int, dict[str, float]], None]  # (run key, epoch, the epoch's history row)
