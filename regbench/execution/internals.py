"""Every private attribute of the standard library regbench touches, in one module, checked by
:func:`contract_problems` (a test runs it, like backend.keras_internals' check of Keras). Each use has a public
fallback, so a Python that moves one only loses speed or promptness, never a result.
"""

from __future__ import annotations

import atexit
from typing import Any


def contract_problems() -> list[str]:
    """The private attributes below that this Python lacks (empty when all are there)."""
    from concurrent.futures import ProcessPoolExecutor

    problems = []
    if not callable(getattr(atexit, "_run_exitfuncs", None)):
        problems.append("atexit._run_exitfuncs is gone: commands end through Python's slower teardown")
    if not hasattr(ProcessPoolExecutor, "terminate_workers"):
        pool = ProcessPoolExecutor(max_workers=1)
        if not hasattr(pool, "_processes"):
            problems.append("ProcessPoolExecutor._processes is gone: Ctrl-C waits for the runs in flight")
        pool.shutdown()
    return problems


def run_exit_handlers() -> bool:
    """Run the ``atexit`` handlers now, as Python does at exit (``atexit._run_exitfuncs``, the only way to run
    them early); False when this Python has no such function (then the caller exits as usual)."""
    run = getattr(atexit, "_run_exitfuncs", None)
    if run is None:
        return False
    run()
    return True


def terminate_pool_workers(pool: Any) -> None:
    """Stop a ProcessPoolExecutor's running workers now: ``shutdown`` alone waits for the runs in flight. Python
    3.14 has ``terminate_workers()`` for this; before it, the pool's private ``_processes`` map is the only way."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


__all__ = ["contract_problems", "run_exit_handlers", "terminate_pool_workers"]
