"""Import Keras (and its backend) once, without TensorFlow's C++ start-up chatter on the terminal."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import tempfile

BACKENDS = ("tensorflow", "jax", "torch")


def choose_backend(requested: str = "auto", convolutional: bool = False, prefer: str | None = None) -> tuple[str, str]:
    """Pick the Keras backend for this process before Keras is imported; return (backend, why).

    In order: ``KERAS_BACKEND`` when set, always; the backend of a Keras already imported here; ``requested``
    (``--backend``); ``prefer`` (the backend a resumed folder was trained with) when installed; else the
    fastest installed one for the study: JAX for Dense stacks (the seed study in about two thirds of TensorFlow's time
    on a 2-core CPU, and far faster fused on a GPU), TensorFlow for convolutional ones (JAX's CPU convolutions
    are many times slower). The choice is exported as KERAS_BACKEND, so worker processes inherit it.

    Raises:
        RegbenchError: exit code 2, when the requested backend is unknown, not installed, or another backend
            is already loaded in this process.
    """
    from regbench.errors import RegbenchError

    if requested not in ("auto", *BACKENDS):
        raise RegbenchError(f"--backend {requested}: expected auto, {', '.join(BACKENDS)}", exit_code=2)
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"], "KERAS_BACKEND is set"
    if "keras" in sys.modules:
        loaded = sys.modules["keras"].backend.backend()
        if requested not in ("auto", loaded):
            raise RegbenchError(
                f"--backend {requested}: Keras is already loaded with {loaded} in this process; run regbench in a "
                f"new process, or set KERAS_BACKEND={requested} before Python starts",
                exit_code=2,
            )
        return loaded, "Keras was already loaded"
    installed = [b for b in BACKENDS if importlib.util.find_spec(b) is not None]
    if requested != "auto":
        if requested not in installed:
            extra = {"jax": " (pip install 'regbench[jax]')", "torch": " (pip install torch)"}.get(requested, "")
            raise RegbenchError(f"--backend {requested}: {requested} is not installed here{extra}", exit_code=2)
        chosen, why = requested, "--backend"
    elif prefer in installed:
        chosen, why = prefer, "the resumed experiment's backend"
    else:
        order = ("tensorflow", "jax", "torch") if convolutional else ("jax", "tensorflow", "torch")
        chosen = next((b for b in order if b in installed), "tensorflow")
        why = "auto: fastest installed for " + ("convolutional networks" if convolutional else "Dense stacks")
    os.environ["KERAS_BACKEND"] = chosen
    return chosen, why


def import_keras():
    """Import and return ``keras``. Start-up lines that TensorFlow's C++ runtime writes straight to file
    descriptor 2 (oneDNN notices, "could not find cuda drivers") are swallowed; if the import fails they are
    shown with the error. Set REGBENCH_VERBOSE_IMPORT=1 to see them always.
    """
    if "keras" in sys.modules or os.environ.get("REGBENCH_VERBOSE_IMPORT"):
        with _without_optional_imports():
            import keras

        _skip_tensorflow_on_other_backends(keras)
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
    _skip_tensorflow_on_other_backends(keras)
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


def compile_cache(keras=None) -> str | None:
    """On JAX, keep compiled programs on disk so that a study compiles each shape once per machine, not once per
    process; return the folder, or None when off. ``REGBENCH_COMPILE_CACHE``: a folder, or ``off``; default
    ``$XDG_CACHE_HOME/regbench/jax`` (``~/.cache/regbench/jax``), at most 1 GiB (least recently used entries go).
    A ``JAX_COMPILATION_CACHE_DIR`` of your own wins. What it saves: the seed study's compiling (about 5 s of a
    one-epoch run on the 2-core CPU) on every run after the first of the same shapes. JAX keys each entry by the
    program, the compile options and the jax/jaxlib versions, so a result cannot come from a stale program.
    """
    if keras is None or keras.backend.backend() != "jax":
        return None
    import jax

    if jax.config.jax_compilation_cache_dir:  # JAX_COMPILATION_CACHE_DIR, or set already in this process
        return jax.config.jax_compilation_cache_dir
    setting = os.environ.get("REGBENCH_COMPILE_CACHE", "")
    if setting.lower() in ("off", "0", "false", "no"):
        return None
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.abspath(setting or os.path.join(xdg, "regbench", "jax"))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:  # a read-only home: compile in every process, as without a cache
        return None
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # the many small compiles add up too
    jax.config.update("jax_compilation_cache_max_size", 1 << 30)
    return folder


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


def train_on_device(model, x, y, sample, make_batch) -> bool:
    """On the JAX backend, train ``model`` from copies of ``x`` and ``y`` on the device, whole step groups compiled.

    Keras' JAX trainer copies every batch from the host and calls a compiled single step once per batch. Here
    the training arrays are copied to the device once (:func:`shared_copy`), ``fit`` is fed only each batch's
    example indices (:func:`regbench.batches.training_input`), and each group of ``steps_per_execution`` steps
    runs as one compiled loop (``lax.scan`` over Keras' own ``train_step``) that gathers its batches on the
    device: the same steps in the same order on the same state (weights, optimizer, metrics, dropout seeds) as
    Keras' loop, which a test checks. A shorter group (the end of an epoch) is padded with skipped steps, so one
    loop is compiled; a last, smaller batch runs through the same loop at its own size. (XLA takes about 2.5 s
    to compile that one on the 2-core CPU for the 48-run sweep, more than the full-size loop; compiling it in a
    background thread during the first epoch made that run 4 s slower there, as both compiles shared one core.)
    ``make_batch(x, y, item)`` turns an index item (a tuple of arrays, :func:`regbench.batches.assemble`) into a
    batch; ``sample`` is one item of one example, to build the model's metrics and loss from a real batch.
    Returns False (nothing changed) on other backends, or when the model runs eagerly or without XLA: then
    ``fit`` gets the batches themselves.
    """
    import keras

    if keras.backend.backend() != "jax" or model.run_eagerly or not model.jit_compile:
        return False
    if not hasattr(model, "_symbolic_build"):  # a Keras without this internal: feed batches from the host
        return False
    import itertools

    import jax
    import numpy as np

    xs, ys = shared_copy(x, jax.device_put), shared_copy(y, jax.device_put)
    spe = max(1, model.steps_per_execution)
    # Build metrics and loss from a real batch now: fit would build them from its first item, an index batch.
    model._symbolic_build(data_batch=make_batch(xs, ys, sample))
    keras_make = model.make_train_function

    @jax.jit
    def run_group(carry, groups, valid, xs, ys):
        def body(carry, item):
            idx, ok = item
            return jax.lax.cond(ok, lambda c: model.train_step(c[1], make_batch(xs, ys, idx)), lambda c: c, carry), None

        return jax.lax.scan(body, carry, (groups, valid))[0]

    def as_group(items: list[tuple], length: int) -> tuple[tuple, np.ndarray]:
        """Items stacked into one group of ``length`` steps (padded with skipped steps), and which are real."""
        valid = np.arange(length) < len(items)
        items = items + [items[-1]] * (length - len(items))
        return tuple(np.stack(parts) for parts in zip(*items, strict=True)), valid

    def make_train_function(force=False):
        if model.train_function is not None and not force:
            return
        keras_make(force=force)
        first: dict = {}  # the first group's length and zero logs

        def train_function(state, iterator):
            items = [tuple(np.asarray(a) for a in i[0]) for i in itertools.islice(iterator, spe)]
            if not items:
                raise StopIteration  # as Keras' own train function does; fit ends the epoch
            if not first:
                logs = jax.eval_shape(lambda s, i: model.train_step(s, make_batch(xs, ys, i)), state, items[0])[0]
                first.update(
                    shape=items[0][0].shape,
                    length=len(items),
                    no_logs=jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), logs),
                )
            full = list(itertools.takewhile(lambda i: i[0].shape == first["shape"], items))
            length, logs = first["length"], None
            for start in range(0, len(full), length):
                group, valid = as_group(full[start : start + length], length)
                logs, state = run_group((first["no_logs"], state), group, valid, xs, ys)
            for item in items[len(full) :]:
                logs, state = run_group((first["no_logs"], state), *as_group([item], 1), xs, ys)
            return logs, state

        model.train_function = train_function

    model.make_train_function = make_train_function
    return True


_COPIES: dict[tuple[object, int], tuple[object, object]] = {}  # (convert, id(array)) -> (array, its copy)


def shared_copy(array, convert):
    """One ``convert(array)`` per process (a TensorFlow tensor, a JAX device array), shared by every run that
    trains on ``array``: each run's traced pipeline or step keeps what it captured alive, and a copy per run
    added 660 MB to the seed study's peak memory on TensorFlow."""
    key = (convert, id(array))
    held = _COPIES.get(key)
    if held is None or held[0] is not array:
        held = _COPIES[key] = (array, convert(array))
    return held[1]


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
