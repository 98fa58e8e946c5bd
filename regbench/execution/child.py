"""Child Python processes that import regbench and the installed packages, never a file that happens to lie in
the working directory: a ``pickle.py`` or ``typer.py`` in a shared folder must not run when a user runs
regbench there (``python -c`` and ``python -m`` put the working directory first on the import path)."""

from __future__ import annotations

import os
import sys

# For -c: Python 3.11+ leaves the working directory out under PYTHONSAFEPATH; 3.10 needs the entry removed.
_SAFE_PRELUDE = "import sys\nif sys.path and sys.path[0] in ('', '.'):\n    del sys.path[0]\n"


def python_command(code: str, *args: str) -> list[str]:
    """The command line of a Python child that runs ``code`` with ``args`` as its arguments."""
    return [sys.executable, "-c", _SAFE_PRELUDE + code, *args]


def child_env(**overrides: str) -> dict[str, str]:
    """This process's environment for a child, with the safe import path on and ``overrides`` applied."""
    return {**os.environ, "PYTHONSAFEPATH": "1", **overrides}
