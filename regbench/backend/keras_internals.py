"""Every Keras internal regbench touches, in one module, checked by :func:`check_contract`.

Written for Keras 3.15 (pyproject.toml pins ``keras>=3.15,<3.16``). The JAX training loop replaces the model's
``make_train_function`` and builds metrics through the private ``_symbolic_build``; a JAX process turns off
Keras' private ``module_utils.tensorflow`` switch so that seeding does not import TensorFlow. Keras' public
stateless API (``stateless_call``, ``optimizer.stateless_apply``) could replace the loop, but it would rebuild
what ``train_step`` does (metrics, losses, dropout seeds) by hand; keeping Keras' own step keeps runs bitwise
equal to Keras' ``fit`` (tests/backend/test_jax_loop.py). When a Keras release moves one of these internals, regbench
fails with :class:`KerasContractError` naming it, never by silently training another way.
"""

from __future__ import annotations

import sys

from regbench.backend.device_arrays import shared_copy

SUPPORTED_KERAS = "3.15"  # the Keras minor release these internals were written and tested against


class KerasContractError(RuntimeError):
    """Keras no longer has an internal regbench relies on."""


def contract_problems() -> list[str]:
    """The assumptions about Keras' internals that do not hold in the installed Keras (empty when all hold)."""
    import keras

    problems = []
    if ".".join(keras.__version__.split(".")[:2]) != SUPPORTED_KERAS:
        problems.append(f"Keras {keras.__version__} is installed; these internals were checked with {SUPPORTED_KERAS}")
    for name in ("_symbolic_build", "make_train_function", "train_step"):
        if not callable(getattr(keras.Model, name, None)):
            problems.append(f"keras.Model.{name} is gone")
    try:
        from keras.src.utils import module_utils

        if not hasattr(module_utils.tensorflow, "_available"):
            problems.append("keras.src.utils.module_utils.tensorflow._available is gone")
    except (ImportError, AttributeError):
        problems.append("keras.src.utils.module_utils.tensorflow is gone")
    return problems


def check_contract() -> None:
    """Raise :class:`KerasContractError` when an assumption about Keras' internals does not hold."""
    problems = contract_problems()
    if problems:
        raise KerasContractError(
            "regbench's Keras patches (regbench/backend/keras_internals.py) do not fit the installed Keras: "
            + "; ".join(problems)
            + f". Install keras>={SUPPORTED_KERAS},<3.16 (pip install -e .), or check these internals and update them."
        )


def skip_tensorflow_import(keras) -> None:
    """On the JAX or torch backend, keep Keras from importing TensorFlow (≈3 s and 300 MB) just to seed it in
    keras.utils.set_random_seed. regbench feeds numpy arrays, so nothing else needs TensorFlow there."""
    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules:
        return
    check_contract()
    from keras.src.utils import module_utils

    module_utils.tensorflow._available = False


def train_on_device(model, x, y, sample, make_batch) -> bool:
    """On the JAX backend, train ``model`` from copies of ``x`` and ``y`` on the device, whole chunks of steps compiled.

    Keras' JAX trainer copies every batch from the host and calls a compiled single step once per batch. Here
    the training arrays are copied to the device once (:func:`shared_copy`), ``fit`` is fed only each batch's
    example indices (:func:`regbench.training.batches.training_input`), and each chunk of ``steps_per_execution`` steps
    runs as one compiled loop (``lax.scan`` over Keras' own ``train_step``) that gathers its batches on the
    device: the same steps in the same order on the same state (weights, optimizer, metrics, dropout seeds) as
    Keras' loop, which a test checks. A shorter chunk (the end of an epoch) is padded with skipped steps, so one
    loop is compiled; a last, smaller batch runs through the same loop at its own size.
    ``make_batch(x, y, item)`` turns an index item (a tuple of arrays, :func:`regbench.training.batches.assemble`)
    into a batch; ``sample`` is one item of one example, to build the model's metrics and loss from a real batch.
    Returns False (nothing changed) on other backends, or when the model runs eagerly or without XLA: then
    ``fit`` gets the batches themselves. Raises :class:`KerasContractError` when Keras' internals moved.
    """
    import keras

    if keras.backend.backend() != "jax" or model.run_eagerly or not model.jit_compile:
        return False
    check_contract()
    import itertools

    import jax
    import numpy as np

    xs, ys = shared_copy(x, jax.device_put), shared_copy(y, jax.device_put)
    spe = max(1, model.steps_per_execution)
    # Build metrics and loss from a real batch now: fit would build them from its first item, an index batch.
    model._symbolic_build(data_batch=make_batch(xs, ys, sample))
    keras_make = model.make_train_function

    @jax.jit
    def run_chunk(carry, chunks, valid, xs, ys):
        def body(carry, item):
            idx, ok = item
            return jax.lax.cond(ok, lambda c: model.train_step(c[1], make_batch(xs, ys, idx)), lambda c: c, carry), None

        return jax.lax.scan(body, carry, (chunks, valid))[0]

    def as_chunk(items: list[tuple], length: int) -> tuple[tuple, np.ndarray]:
        """Items stacked into one chunk of ``length`` steps (padded with skipped steps), and which are real."""
        valid = np.arange(length) < len(items)
        items = items + [items[-1]] * (length - len(items))
        return tuple(np.stack(parts) for parts in zip(*items, strict=True)), valid

    def make_train_function(force=False):
        if model.train_function is not None and not force:
            return
        keras_make(force=force)
        first: dict = {}  # the first chunk's length and zero logs

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
                chunk, valid = as_chunk(full[start : start + length], length)
                logs, state = run_chunk((first["no_logs"], state), chunk, valid, xs, ys)
            for item in items[len(full) :]:
                logs, state = run_chunk((first["no_logs"], state), *as_chunk([item], 1), xs, ys)
            return logs, state

        model.train_function = train_function

    model.make_train_function = make_train_function
    return True
