"""Import Keras (and its backend) once, without TensorFlow's C++ start-up lines on the terminal."""

from __future__ import annotations

import os
import sys
import tempfile

from regbench.backend.compile_cache import compile_cache
from regbench.backend.keras_internals import skip_tensorflow_import
from regbench.backend.lean_import import without_optional_imports


def import_keras():
    """Import and return ``keras``. Start-up lines that TensorFlow's C++ runtime writes straight to file
    descriptor 2 (oneDNN notices, "could not find cuda drivers") are swallowed; if the import fails they are
    shown with the error. Set REGBENCH_VERBOSE_IMPORT=1 to see them always.
    """
    if "keras" in sys.modules or os.environ.get("REGBENCH_VERBOSE_IMPORT"):
        with without_optional_imports():
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
            with without_optional_imports():
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
