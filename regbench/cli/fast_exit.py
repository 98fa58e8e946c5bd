"""Speed plumbing for the command line: end the process without Python's module teardown."""

from __future__ import annotations

import os
import sys


def exit_now(code: int | str | None) -> None:
    """End the process with ``code`` the way ``sys.exit`` does, less Python's teardown of every loaded module:
    after Keras, JAX and matplotlib it takes about half a second, which every command would wait for. Output
    streams are flushed and exit handlers run first (a Ray cluster's shutdown, temporary folders) through
    ``atexit._run_exitfuncs``, the only way to run them early; without it, or while another thread that Python
    would wait for is still running, exit as usual."""
    import atexit
    import threading

    run_handlers = getattr(atexit, "_run_exitfuncs", None)
    others = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    if run_handlers is None or others:
        sys.exit(code)
    if isinstance(code, str):
        print(code, file=sys.stderr)
    status = code if isinstance(code, int) else (0 if code is None else 1)
    run_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing left to show anyway
            pass
    os._exit(status)
