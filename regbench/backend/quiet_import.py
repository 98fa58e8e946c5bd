"""TODO."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

from regbench.backend.compile_cache import compile_cache
from regbench.backend.keras_internals import skip_tensorflow_import


def import_keras():
    """Import and return ``keras``. Start-up lines that TensorFlow's C++ runtime writes straight to file
    descriptor 2 (oneDNN notices, "could not find cuda drivers") are swallowed; if the import fails they are
    shown with the error. Set REGBENCH_VERBOSE_IMPORT=1 to see them always.
    """
    if "keras" in sys.modules or os.environ.get("REGBENCH_VERBOSE_IMPORT"):
        with _without_optional_imports():
            import keras

        skip_tensorflow_import(keras)
        compile_cache(keras)
        return keras
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            with _without_optional_imports():
                import keras

            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                tf.config.list_physical_devices()  # device discovery prints its own notices: do it now
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    skip_tensorflow_import(keras)
    compile_cache(keras)
    return keras


OPTIONAL_FOR_KERAS = ("sklearn", "pandas")  # Keras imports them when installed; regbench uses neither through it


@contextlib.contextmanager
def _without_optional_imports():
    """Keras imports scikit-learn (for its ``keras.wrappers``) and pandas (to accept DataFrames in ``fit``) when
    they are installed; regbench uses neither: with scipy.stats and pyarrow, which they bring, about 1.3 s of
    every start on the 2-core CPU (``import keras``: median 1.8 against 2.9 s without scikit-learn, measured
    alternating; pandas 0.3 s more). While Keras is imported here, importing them fails, which Keras handles;
    afterwards they import as usual (Keras' wrappers then say scikit-learn is missing). Nothing changes for
    a module that was imported already."""
    blocked = [name for name in OPTIONAL_FOR_KERAS if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` raise ImportError
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
