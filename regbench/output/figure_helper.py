"""Speed plumbing: a helper process that draws half of a large comparison's figures."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from regbench.execution.child import child_env, python_command

_helper: subprocess.Popen | None = None  # a process waiting to draw figures (start_helper)


def start_helper() -> None:
    """Start a helper process that imports this module and waits for figures to draw (:func:`draw`). Call it
    early: its imports then overlap other work. It is a plain ``python -c`` process (with a safe import path),
    not multiprocessing, so nothing re-runs the caller's main module; it exits when this process closes its
    input."""
    global _helper
    if _helper is not None:
        return
    env = child_env(PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    try:
        _helper = subprocess.Popen(
            python_command("from regbench.output.figure_helper import serve; serve()"),
            stdin=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # a figure it fails on is redrawn here, and fails here
            env=env,
        )
    except OSError:
        _helper = None


def serve() -> None:
    """The helper: read the path of a pickled job list from stdin, draw those figures (nothing on end of input)."""
    path = sys.stdin.readline().strip()
    if path:
        _draw_each(pickle.loads(Path(path).read_bytes()))


def draw(jobs: list[tuple[Callable, tuple]], parallel: bool = False) -> int:
    """Draw figures, each ``(a module-level function, its arguments)``. With ``parallel``, a helper process draws
    every other one while this process draws the rest: drawing is a sizeable share of a short sweep's time. If
    the helper cannot start or fails, its figures are drawn here, so a figure is never missing and an error
    surfaces in this process. Returns how many figures the helper drew."""
    global _helper
    if not parallel or len(jobs) < 2:
        _draw_each(jobs)
        return 0
    start_helper()
    helper, _helper = _helper, None
    theirs = jobs[1::2]
    with tempfile.TemporaryDirectory(prefix="regbench-figures-") as tmp:
        handed = False
        if helper is not None:
            try:
                (Path(tmp) / "jobs.pickle").write_bytes(pickle.dumps(theirs))
                helper.stdin.write(f"{Path(tmp) / 'jobs.pickle'}\n".encode())
                helper.stdin.close()
                handed = True
            except (OSError, pickle.PicklingError, AttributeError, TypeError):
                helper.kill()
                helper.wait()
        _draw_each(jobs[::2] if handed else jobs)
        if not handed:
            return 0
        helper.wait()
    if helper.returncode != 0:
        _draw_each(theirs)  # a failing figure raises here, where it is reported
        return 0
    return len(theirs)


def _draw_each(jobs: list[tuple[Callable, tuple]]) -> None:
    for function, args in jobs:
        function(*args)
