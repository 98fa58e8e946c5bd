"""One study on several Keras backends, each in a process of its own (Keras fixes its backend per process)."""

from __future__ import annotations

from pathlib import Path

from regbench.backend.choice import BACKENDS
from regbench.errors import RegbenchError
from regbench.execution.child import child_env, python_command
from regbench.store.writer import new_experiment_dir

MAIN = "sys.argv[0] = 'regbench'\nfrom regbench.cli import main\nmain()\n"


def run_on_backends(config: Path, name: str, backends: list[str], args: list[str], out: Path) -> tuple[Path, int]:
    """Run one study once per Keras backend, each in a process of its own (Keras fixes its backend per process),
    into ``out/<name>-backends-<timestamp>/<backend>/``. Returns that folder and the worst exit code.

    Args:
        config: The study file.
        name: The study's name (names the folder).
        backends: Backend names, e.g. ["tensorflow", "jax"].
        args: Further ``regbench run`` arguments for every backend (``--set``, ``--seeds``, ``--jobs`` ...).
        out: Parent of the new folder.

    Raises:
        RegbenchError: (exit 2) for an unknown or uninstalled backend, before anything is written.
    """
    import importlib.util
    import subprocess

    problems = []
    for b in backends:
        if b not in BACKENDS:
            problems.append(f"--backends {b}: unknown backend; expected some of {', '.join(BACKENDS)}")
        elif importlib.util.find_spec(b) is None:
            extra = " (pip install 'regbench[jax]')" if b == "jax" else ""
            problems.append(f"--backends {b}: {b} is not installed in this environment{extra}")
    if len(set(backends)) < 2 and not problems:
        problems.append(f"--backends {','.join(backends)}: expected two or more backends, e.g. tensorflow,jax")
    if problems:
        raise RegbenchError(problems, exit_code=2)
    parent = new_experiment_dir(Path(out), f"{name}-backends")
    worst = 0
    for b in dict.fromkeys(backends):
        command = python_command(MAIN, "run", str(config), *args, "--out", str(parent / b))
        code = subprocess.run(command, env=child_env(KERAS_BACKEND=b), check=False).returncode
        worst = max(worst, code)
        if code in (2, 130):
            break
    return parent, worst
