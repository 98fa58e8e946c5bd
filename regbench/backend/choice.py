"""Which Keras backend a process uses, and why (recorded in environment.json)."""

from __future__ import annotations

import enum
import importlib.util
import os
import sys

BACKENDS = ("tensorflow", "jax", "torch")


class Backend(str, enum.Enum):
    """--backend: a Keras backend, or ``auto`` (the fastest installed one for the study)."""

    AUTO = "auto"
    TENSORFLOW = "tensorflow"
    JAX = "jax"
    TORCH = "torch"


def choose_backend(
    requested: Backend | str = Backend.AUTO, convolutional: bool = False, prefer: str | None = None
) -> tuple[str, str]:
    """Pick the Keras backend for this process before Keras is imported; return (backend, why).

    In order: ``KERAS_BACKEND`` when set, always; the backend of a Keras already imported here; ``requested``
    (``--backend``); ``prefer`` (the backend a resumed folder was trained with) when installed; else the
    fastest installed one for the study: JAX for Dense stacks (faster on a CPU, far faster fused on a GPU),
    TensorFlow for convolutional ones (JAX's CPU convolutions are slower; docs/performance.md has both). The
    choice is exported as KERAS_BACKEND, so worker processes inherit it.

    Raises:
        RegbenchError: exit code 2, when the requested backend is unknown, not installed, or another backend
            is already loaded in this process.
    """
    from regbench.errors import RegbenchError

    if requested not in set(Backend):
        raise RegbenchError(f"--backend {requested}: expected auto, {', '.join(BACKENDS)}", exit_code=2)
    requested = Backend(requested).value
    if os.environ.get("KERAS_BACKEND"):
        chosen = os.environ["KERAS_BACKEND"]
        if "keras" not in sys.modules:  # Keras would fail on it with a traceback from its import
            if chosen not in BACKENDS:
                raise RegbenchError(
                    f"KERAS_BACKEND={chosen!r}: expected {', '.join(BACKENDS)} (or unset it: regbench picks one)",
                    exit_code=2,
                )
            if importlib.util.find_spec(chosen) is None:
                raise RegbenchError(
                    f"KERAS_BACKEND={chosen}: {chosen} is not installed here; unset KERAS_BACKEND or install it",
                    exit_code=2,
                )
        return chosen, "KERAS_BACKEND is set"
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
