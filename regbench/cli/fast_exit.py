"""Speed plumbing for the command line: end the process without Python's module teardown."""

from __future__ import annotations

import os
import sys


def exit_now(code: int | str | None) -> None:
    """End the process with ``code`` the way ``sys.exit`` does, less Python's teardown of every loaded module
    (after Keras, JAX and matplotlib a noticeable wait at the end of every command; docs/performance.md). Exit
    handlers run first (a Ray cluster's shutdown, temporary folders) and output streams are flushed; while
    another thread that Python would wait for is still running, or when this Python cannot run the handlers
    early (execution.internals), exit as usual."""
    import threading

    from regbench.execution.internals import run_exit_handlers

    others = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    if others:
        sys.exit(code)
    if isinstance(code, str):
        print(code, file=sys.stderr)
    status = code if isinstance(code, int) else (0 if code is None else 1)
    if not run_exit_handlers():
        sys.exit(status)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing left to show anyway
            pass
    os._exit(status)
