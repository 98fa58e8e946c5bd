"""RunOptions: the one object the CLI fills; run --backends re-launches runs from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from regbench.study.options import RunOptions


def test_every_option_is_forwarded_to_a_run_in_another_process():
    """run --backends used to rebuild argv by hand, and an option not added there was silently dropped."""
    options = RunOptions(
        overrides=["train.epochs=2", "train.seeds=[0,1]"],
        out=Path("o"),
        data_dir="d",
        jobs=2,
        threads=3,
        executor="ray",
        ray_address="auto",
        gpus_per_task=1.0,
        resume=Path("r"),
        fuse=False,
        tensorboard=True,
        backend="jax",
    )
    argv = options.argv()
    for field in dataclasses.fields(RunOptions):
        if field.name != "overrides":
            assert any(a.lstrip("-").replace("no-", "") == field.name.replace("_", "-") for a in argv), field.name
    assert argv[:4] == ["--set", "train.epochs=2", "--set", "train.seeds=[0,1]"]
    assert "--no-fuse" in argv and "--tensorboard" in argv and argv[argv.index("--jobs") + 1] == "2"
    assert "--out" not in options.argv(exclude=("out",))
    assert "--data-dir" not in RunOptions().argv()  # unset options are left to the other process's defaults
