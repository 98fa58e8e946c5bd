"""How to run a study: the one options object that the command line fills and every part of a run reads."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RunOptions:
    """The settings of ``regbench run`` besides the study file (see ``regbench run --help``)."""

    overrides: list[str] = field(default_factory=list)  # --set dotted.key=value (and --seeds, as train.seeds)
    out: Path = Path("outputs")
    data_dir: str | None = None
    jobs: int = 1  # runs at a time, each group in a process of its own
    threads: int = 1  # CPU threads per training process; 0: the framework's default
    executor: str = "local"
    ray_address: str | None = None
    gpus_per_task: float | None = None  # on Ray: GPUs each task claims; None: one when the cluster has GPUs
    resume: Path | None = None
    fuse: bool = True
    tensorboard: bool = False
    backend: str = "auto"  # the backend asked for; what was chosen, and why, is recorded in environment.json

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
                args += [flag, str(value)]
        return args
