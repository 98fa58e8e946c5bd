"""Speed plumbing: keep Keras from importing optional packages regbench never uses through it."""

from __future__ import annotations

import contextlib
import sys

OPTIONAL_FOR_KERAS = ("sklearn", "pandas")  # Keras imports them when installed; regbench uses neither through it


@contextlib.contextmanager
def without_optional_imports():
    """While Keras is imported, importing scikit-learn and pandas fails, which Keras handles: it imports them
    only for features regbench does not use (``keras.wrappers``, DataFrames in ``fit``), and they cost about a
    second of every start (docs/performance.md). Afterwards they import as usual; a module already imported is
    left alone."""
    blocked = [name for name in OPTIONAL_FOR_KERAS if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` raise ImportError
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
