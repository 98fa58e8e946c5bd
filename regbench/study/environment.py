"""What a reader needs to judge a study's numbers (environment.json), and the check that a resumed folder is
continued by the runtime that started it."""

from __future__ import annotations

import os
import platform
import socket
import sys
from pathlib import Path
from typing import Any

from regbench import __version__
from regbench.errors import RegbenchError
from regbench.store.files import read_file


def environment() -> dict[str, Any]:
    """Versions, backend, host and devices: what a reader needs to judge the numbers."""
    import numpy

    from regbench.backend.compile_cache import compile_cache
    from regbench.backend.quiet_import import import_keras

    keras = import_keras()  # with --jobs, the driver's first Keras import: without TensorFlow's start-up lines
    from regbench.training.results import runtime

    env: dict[str, Any] = {
        "regbench": __version__,
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "numpy": numpy.__version__,
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "command": " ".join(sys.argv),
        "runtime": runtime(),
    }
    if env["backend"] == "tensorflow":
        import tensorflow as tf

        env["tensorflow"] = tf.__version__
        env["gpus"] = [d.name for d in tf.config.list_physical_devices("GPU")]
    elif env["backend"] == "jax":
        import jax

        env["jax"] = jax.__version__
        env["compile_cache"] = compile_cache(keras)
        env["gpus"] = [str(d) for d in jax.devices() if d.platform != "cpu"]
    return env


def provenance(config_file: str | Path, overrides: list[str]) -> dict[str, Any]:
    """Where a study's numbers came from: the regbench version, the study file and its sha256, the --set
    overrides applied to it, and, when the file is in a git repository, the commit and whether tracked files had
    uncommitted changes — read from the repository's files, never by running git, which would run the
    repository's own configuration (study.gitstate). None when there is no repository."""
    import hashlib

    from regbench.study.gitstate import git_state

    path = Path(config_file)
    try:
        sha = hashlib.sha256(read_file(path, 2**26, follow=True)).hexdigest()
    except (OSError, ValueError):
        sha = None
    git = git_state(path.parent) if path.is_file() else None
    return {
        "regbench": __version__,
        "config_file": str(path),
        "config_sha256": sha,
        "overrides": list(overrides),
        "git": git,
    }


def check_same_runtime(exp_dir: Path) -> None:
    """Refuse to resume a folder whose runs another backend, framework version or batch order trained: one
    experiment folder holds runs of one runtime (see training.results.runtime).

    Raises:
        RegbenchError: exit code 2, saying what differs and how to go on.
    """
    from regbench.store.reader import read_experiment
    from regbench.training.results import runtime

    recorded = read_experiment(exp_dir).runtime
    if recorded is None:
        return  # nothing recorded: nothing to compare against
    ours = runtime()
    differ = [f"{k} {recorded[k]} there, {v} here" for k, v in ours.items() if k in recorded and recorded[k] != v]
    if differ:
        hint = (
            f"run with KERAS_BACKEND={recorded['backend']}, or start a new experiment (without --resume)"
            if recorded.get("backend") and recorded["backend"] != ours["backend"]
            else "start a new experiment (without --resume)"
        )
        raise RegbenchError(
            f"--resume {exp_dir}: its runs were trained by another runtime ({'; '.join(differ)}); one experiment "
            f"folder holds runs of one runtime: {hint}",
            exit_code=2,
        )
