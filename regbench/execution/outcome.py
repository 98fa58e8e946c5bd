"""What executing a run gives back, whatever executed it: a typed outcome with a status."""

from __future__ import annotations

import enum
import traceback as tb
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Status(enum.Enum):
    FINISHED = "finished"  # trained to its last epoch or stopped early
    DIVERGED = "diverged"  # trained, but its loss became NaN or exploded (its metrics say so)
    FAILED = "failed"  # raised: no metrics, an error and its traceback

    def trained(self) -> bool:
        return self is not Status.FAILED


@dataclass
class Outcome:
    status: Status
    metrics: dict[str, Any] = field(default_factory=dict)  # the body of metrics.json, when trained
    history: list[dict[str, float]] = field(default_factory=list)
    error: str = ""  # "ExceptionType: message", when failed
    traceback: str = ""
    model: bytes | None = None  # the run's model.keras, when the study saves models

    @classmethod
    def trained(cls, metrics: dict[str, Any], history: list[dict[str, float]], model: bytes | None = None) -> Outcome:
        return cls(Status(metrics["status"]), metrics, history, model=model)

    @classmethod
    def failed(cls, exc: BaseException, with_traceback: bool = True) -> Outcome:
        return cls(
            Status.FAILED, error=f"{type(exc).__name__}: {exc}", traceback=tb.format_exc() if with_traceback else ""
        )


EpochHook = Callable[[str, int, dict[str, float]], None]  # (run key, epoch, logs)
