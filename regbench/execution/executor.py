"""Where runs execute: one small protocol, three executors (this process, a local process pool, a Ray cluster).

Every executor takes groups of tasks (:func:`regbench.execution.groups.make_groups`) and yields
``(task, outcome)`` as runs end, in completion order. The driver (:mod:`regbench.study.run`) writes the run
folders, so the on-disk format is the same whatever ran the work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from regbench.errors import RegbenchError
from regbench.execution.groups import Task
from regbench.execution.outcome import EpochHook, Outcome

KINDS = ("local", "ray")
StartHook = Callable[[Task], None]


class Executor(Protocol):
    def start(self) -> None:
        """Before data are loaded (an in-process executor limits threads and imports the framework here)."""

    def release_driver_data(self) -> None:
        """After the driver has checked that every dataset loads: workers that load their own copy need not
        keep the driver's."""

    def parallel(self) -> int:
        """How many groups train at once (after :meth:`start`): fused runs are split into at least as many."""

    def device_memory(self) -> int | None:
        """Bytes of memory a group trains in, when it is not this machine's (a GPU); None: this machine's."""

    def launch(
        self, groups: list[list[Task]], on_start: StartHook, on_epoch: EpochHook
    ) -> Iterator[tuple[Task, Outcome]]:
        """Train the groups; yield (task, outcome) as runs end."""
        ...


def check_kind(kind: str) -> None:
    """Bad input (exit 2) for an executor name other than local or ray."""
    if kind not in KINDS:
        raise RegbenchError(f"--executor {kind}: expected local or ray", exit_code=2)


def make_executor(
    kind: str = "local",
    jobs: int = 1,
    threads: int = 1,
    ray_address: str | None = None,
    gpus_per_task: float | None = None,
) -> Executor:
    """The executor for the command line's choice: ``local`` with ``jobs`` 1 trains here, more in a process pool;
    ``ray`` on a Ray cluster (``ray_address``, or a local one started for the study), each task claiming
    ``gpus_per_task`` GPUs (None: one when the cluster has GPUs, else none)."""
    check_kind(kind)
    if kind == "ray":
        from regbench.execution.ray_cluster import RayCluster

        return RayCluster(ray_address, jobs, gpus_per_task, threads)
    from regbench.execution.local import InProcess, ProcessPool

    return InProcess(threads) if jobs <= 1 else ProcessPool(jobs, threads)
