"""How to run a study: the one options object that the command line fills and every part of a run reads, and the
one place where an option given on the command line is weighed against the study file's own setting."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from regbench.execution.executor import ExecutorConfig, ExecutorKind

if TYPE_CHECKING:
    from regbench.config.schema import Experiment


@dataclass(frozen=True)
class Settings:
    """What a run uses where the command line and the study file both may say (:meth:`RunOptions.settings`)."""

    executor: ExecutorConfig
    tensorboard: bool


@dataclass
class RunOptions:
    """The settings of ``regbench run`` besides the study file (see ``regbench run --help``)."""

    overrides: list[str] = field(default_factory=list)  # --set dotted.key=value (and --seeds, as train.seeds)
    out: Path = Path("outputs")
    data_dir: str | None = None
    jobs: int = 1  # runs at a time, each unit in a process of its own
    threads: int = 1  # CPU threads per training process; 0: the framework's default
    executor: ExecutorKind = ExecutorKind.LOCAL
    ray_address: str | None = None
    gpus_per_task: float | None = None  # on Ray: GPUs each unit claims; None: the study's, else one when there are
    resume: Path | None = None
    fuse: bool = True
    tensorboard: bool = False
    backend: str = "auto"  # the backend asked for; what was chosen, and why, is recorded in environment.json

    def settings(self, experiment: Experiment) -> Settings:
        """The command line over the study file: an option given wins, else the study's setting applies
        (``execution.gpus_per_task``; ``output.tensorboard`` turns logs on when --tensorboard does not)."""
        gpus = self.gpus_per_task if self.gpus_per_task is not None else experiment.execution.gpus_per_task
        executor = ExecutorConfig(ExecutorKind(self.executor), self.jobs, self.threads, self.ray_address, gpus)
        return Settings(executor, self.tensorboard or experiment.output.tensorboard)

    def argv(self, exclude: tuple[str, ...] = ()) -> list[str]:
        """These options as ``regbench run`` arguments (for a run in another process): every field, so that a
        new option cannot be dropped on the way; ``exclude`` names fields the caller sets itself."""
        args: list[str] = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            flag = "--" + f.name.replace("_", "-")
            if f.name in exclude or value is None:
                continue
            if f.name == "overrides":
                args += [a for item in value for a in ("--set", item)]
            elif isinstance(value, bool):
                args.append(flag if value else "--no-" + f.name.replace("_", "-"))
            else:
                args += [flag, str(value.value if isinstance(value, enum.Enum) else value)]
        return args
