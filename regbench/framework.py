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

        _skip_tensorflow_on_other_backends(keras)
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


def loop_steps_in_xla(model) -> None:
    """On the JAX backend, run each group of ``steps_per_execution`` training steps as one compiled loop.

    Keras' TensorFlow trainer compiles ``steps_per_execution`` steps into one graph call; its JAX trainer
    calls a compiled single step that many times from Python. This replaces the model's train function with
    one that stacks the group's batches and runs Keras' own ``train_step`` over them in a ``lax.scan``: the
    same steps in the same order on the same state (weights, optimizer, metrics, dropout seeds), one call per
    group (measured: about 10 % less time per epoch for the fused seed study). A shorter group (the end of an
    epoch) is padded with skipped steps, so one loop is compiled; a last, smaller batch goes through Keras'
    own single step. A no-op on other backends.
    """
    import keras

    spe = model.steps_per_execution
    if keras.backend.backend() != "jax" or spe <= 1 or model.run_eagerly or not model.jit_compile:
        return
    import itertools

    import jax
    import numpy as np

    keras_make = model.make_train_function

    def body(carry, item):
        batch, valid = item
        return jax.lax.cond(valid, lambda c: model.train_step(c[1], batch), lambda c: c, carry), None

    @jax.jit
    def run_group(carry, batches, valid):
        return jax.lax.scan(body, carry, (batches, valid))[0]

    def shapes(batch) -> list[tuple[int, ...]]:
        return [np.shape(a) for a in jax.tree.leaves(batch)]

    def make_train_function(force=False):
        if model.train_function is not None and not force:
            return
        keras_make(force=force)
        one_step = model.train_function
        first: dict = {}  # the first group's batch shapes, length, and zero logs

        def train_function(state, iterator):
            batches = list(itertools.islice(iterator, spe))
            if not batches:
                raise StopIteration  # as Keras' own train function does; fit ends the epoch
            if not first:
                logs = jax.eval_shape(model.train_step, state, batches[0])[0]
                first.update(
                    shapes=shapes(batches[0]),
                    length=len(batches),
                    no_logs=jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), logs),
                )
            full = list(itertools.takewhile(lambda b: shapes(b) == first["shapes"], batches))
            length, logs = first["length"], None
            for start in range(0, len(full), length):
                group = full[start : start + length]
                valid = np.arange(length) < len(group)
                group += [group[-1]] * (length - len(group))
                stacked = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *group)
                logs, state = run_group((first["no_logs"], state), stacked, valid)
            for batch in batches[len(full) :]:
                logs, state = one_step(state, iter([batch]))
            return logs, state

        model.train_function = train_function

    model.make_train_function = make_train_function


BATCH_ORDER = "regbench-1"  # the batch-order scheme runs are trained with (regbench.batches.epoch_order)


def runtime() -> dict[str, str]:
    """What trained a run, beyond its config: backend, framework and Keras versions, batch-order scheme.

    Part of a run's identity for pooling: runs of one config on different backends or versions are not the
    same experiment (a framework quirk can change a verdict), so reports keep them in separate rows.
    """
    import importlib

    import keras

    backend = keras.backend.backend()
    try:
        version = importlib.import_module(backend).__version__
    except (ImportError, AttributeError):
        version = "?"
    return {
        "backend": backend,
        "framework": f"{backend} {version}",
        "keras": keras.__version__,
        "batch_order": BATCH_ORDER,
    }
