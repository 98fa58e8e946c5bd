"""TODO."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from regbench.errors import RegbenchError
from regbench.execution.jobs import Task
from regbench.execution.local import run_processes, run_serial
from regbench.execution.outcome import EpochHook, Outcome
from regbench.execution.ray_cluster import run_ray
from regbench.execution.worker import set_thread_env


@dataclass
class Executor:
    """Where runs execute: ``local`` in this process (``jobs`` 1) or in ``jobs`` processes, or on ``ray``.

    The one place that turns the command line's executor choice into behaviour."""

    kind: str = "local"
    jobs: int = 1
    threads: int = 1
    ray_address: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("local", "ray"):
            raise RegbenchError(f"--executor {self.kind}: expected local or ray", exit_code=2)

    @property
    def in_process(self) -> bool:
        return self.kind == "local" and self.jobs <= 1

    def start(self) -> None:
        """Before data are loaded: an in-process executor sets its threads and imports the framework."""
        if self.in_process:
            from regbench.backend.quiet_import import import_keras

            set_thread_env(self.threads)  # only takes effect if the framework has not started yet
            import_keras()

    def data_checked(self) -> None:
        """After the driver checked that every dataset loads: workers load their own copy, so drop it here."""
        if not self.in_process:
            from regbench.data.splits import forget_splits

            forget_splits()

    def run(self, jobs: list[list[Task]], on_start, on_epoch: EpochHook) -> Iterator[tuple[Task, Outcome]]:
        """Execute the jobs; yield (task, outcome) as runs end."""
        if self.kind == "ray":
            return run_ray(jobs, self.ray_address, on_start, on_epoch)
        if self.jobs > 1:
            return run_processes(jobs, self.jobs, on_start, on_epoch, threads=self.threads)
        return run_serial(jobs, on_start, on_epoch)
