"""Import Keras (and its backend) once, without TensorFlow's C++ start-up chatter on the terminal."""

from __future__ import annotations

import os
import sys
import tempfile


def import_keras():
    """Import and return ``keras``. Start-up lines that TensorFlow's C++ runtime writes straight to file
    descriptor 2 (oneDNN notices, "could not find cuda drivers") are swallowed; if the import fails they are
    shown with the error. Set REGBENCH_VERBOSE_IMPORT=1 to see them always.
    """
    if "keras" in sys.modules or os.environ.get("REGBENCH_VERBOSE_IMPORT"):
        import keras

        return keras
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
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
    _skip_tensorflow_on_other_backends(keras)
    return keras


def _skip_tensorflow_on_other_backends(keras) -> None:
    """On the JAX or torch backend, keep Keras from importing TensorFlow (≈3 s and 300 MB) just to seed it in
    keras.utils.set_random_seed. regbench feeds numpy arrays, so nothing else needs TensorFlow there."""
    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules:
        return
    try:
        from keras.src.utils import module_utils

        module_utils.tensorflow._available = False
    except (ImportError, AttributeError):  # a Keras without this internal: it just imports TensorFlow
        pass
