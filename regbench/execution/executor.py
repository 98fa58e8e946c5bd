"""Where runs execute: one small contract, three executors (this process, a local process pool, a Ray cluster).

The contract is Hydra's launcher's (``hydra/plugins/launcher.py``): :meth:`Executor.setup` starts what the
executor needs and says what it offers (:class:`Capacity`: parallel slots, a device's memory), then
:meth:`Executor.launch` trains the units (:mod:`regbench.execution.units`) and yields ``(task, outcome)`` as
runs end, in completion order. The study's driver (:mod:`regbench.study.run`) writes the run folders, so the
on-disk format is the same whatever ran the work.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from regbench.execution.outcome import EpochHook, Outcome
    from regbench.execution.units import Task, Unit

StartHook = Callable[["Task"], None]


class ExecutorKind(str, enum.Enum):
    """--executor: where a study's units train."""

    LOCAL = "local"  # this process (--jobs 1) or a process pool
    RAY = "ray"  # a Ray cluster (--ray-address), or a local Ray started for the study


@dataclass(frozen=True)
class ExecutorConfig:
    """How to execute a study's units (the command line's choices over the study file's, study.options)."""

    kind: ExecutorKind = ExecutorKind.LOCAL
    jobs: int = 1  # units at a time (local: processes; Ray without GPUs: tasks)
    threads: int = 1  # CPU threads per training process; 0: the framework's default
    ray_address: str | None = None
    gpus_per_task: float | None = None  # on Ray: GPUs each unit claims; None: one when the cluster has GPUs


@dataclass(frozen=True)
class Capacity:
    """What an executor offers once set up."""

    parallel: int = 1  # units that train at once: fused runs are split into at least as many
    device_memory: int | None = None  # bytes one unit trains in when not this machine's memory (a GPU)
    loads_own_data: bool = False  # its workers load their own copy of the data: the driver need not keep its


class Executor(Protocol):
    def setup(self) -> Capacity:
        """Before data are loaded (an in-process executor limits threads and imports the framework here)."""
        ...

    def launch(self, units: list[Unit], on_start: StartHook, on_epoch: EpochHook) -> Iterator[tuple[Task, Outcome]]:
        """Train the units; yield (task, outcome) as runs end."""
        ...


def make_executor(config: ExecutorConfig) -> Executor:
    """The executor for ``config``: ``local`` with ``jobs`` 1 trains here, more in a process pool; ``ray`` on a
    Ray cluster."""
    if config.kind is ExecutorKind.RAY:
        from regbench.execution.ray_cluster import RayCluster

        return RayCluster(config)
    from regbench.execution.local import InProcess, ProcessPool

    return InProcess(config) if config.jobs <= 1 else ProcessPool(config)
