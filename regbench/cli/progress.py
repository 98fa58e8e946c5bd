"""Progress of a study on the terminal: a live display, or one line per epoch and run for logs and pipes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from regbench.cli.console import console, printable, shown

if TYPE_CHECKING:  # its record types import pydantic, which --help need not wait for
    from regbench.execution.outcome import Outcome


class PlainProgress:
    """One line per epoch and per finished run: for logs and pipes."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def __init__(self, total_runs: int):
        self.total, self.done, self.epochs = total_runs, 0, {}
        self.path: Path | None = None
        self.finished = 0

    def begin(self, path: Path) -> None:
        self.path = path
        console.print(shown(f"Writing {path}/"), highlight=False)

    def start_run(self, key: str, epochs: int) -> None:
        self.epochs[key] = epochs

    def skip_run(self, key: str) -> None:
        self.done += 1
        print(f"[{self.done}/{self.total}] {printable(key)}: already finished, skipped", flush=True)

    def epoch(self, key: str, epoch: int, logs: dict[str, float]) -> None:
        print(
            f"[{self.done + 1}/{self.total}] {printable(key)} epoch {epoch}/{self.epochs.get(key, '?')} "
            f"loss={logs.get('data_loss', float('nan')):.4f} val_loss={logs.get('val_data_loss', float('nan')):.4f} "
            f"val_acc={logs.get('val_accuracy', float('nan')):.4f}",
            flush=True,
        )

    def end_run(self, key: str, outcome: Outcome) -> None:
        self.done += 1
        self.finished += outcome.status.trained()
        print(f"[{self.done}/{self.total}] {printable(key)} {printable(_outcome_text(outcome))}", flush=True)


def _outcome_text(outcome: Outcome) -> str:
    if outcome.run is None:
        return f"FAILED: {outcome.error}"
    m = outcome.run.metrics
    resumed = f" (continued after epoch {m.resumed_from_epoch})" if m.resumed_from_epoch else ""
    accuracy = math.nan if m.test_accuracy is None else m.test_accuracy
    return (
        f"{m.status.value}: test_acc={accuracy:.4f} best_epoch={m.best_epoch} "
        f"epochs={m.epochs_run}{resumed} time={m.train_time_s:.1f}s"
    )


class RichProgress(PlainProgress):
    """A live display: all runs so far, each with its epochs and validation accuracy, and the overall count."""

    def __init__(self, total_runs: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        super().__init__(total_runs)
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.overall = self.bar.add_task("all runs", total=total_runs, info="")
        self.tasks: dict[str, Any] = {}

    def __enter__(self):
        self.bar.start()
        return self

    def __exit__(self, *exc):
        self.bar.stop()

    def skip_run(self, key: str) -> None:
        self.done += 1
        self.bar.update(self.overall, completed=self.done, info=f"{self.done} done")

    def start_run(self, key: str, epochs: int) -> None:
        super().start_run(key, epochs)
        self.tasks[key] = self.bar.add_task(escape(f"{printable(key)} epoch"), total=epochs, info="")

    def epoch(self, key: str, epoch: int, logs: dict[str, float]) -> None:
        if key in self.tasks:
            info = f"val_acc {logs.get('val_accuracy', float('nan')):.4f}"
            self.bar.update(self.tasks[key], completed=epoch, info=info)

    def end_run(self, key: str, outcome: Outcome) -> None:
        self.done += 1
        self.finished += outcome.status.trained()
        task = self.tasks.get(key)
        if task is None:
            task = self.tasks[key] = self.bar.add_task(escape(f"{printable(key)} epoch"), total=1, info="")
        epochs = outcome.run.metrics.epochs_run if outcome.run is not None else None
        info = escape(printable(_outcome_text(outcome)))
        self.bar.update(task, completed=epochs or 0, total=epochs or 1, info=info)
        self.bar.update(self.overall, completed=self.done)
