"""Which framework trains a run: backend, its version and Keras' version (part of a run's identity)."""

from __future__ import annotations


def framework() -> dict[str, str]:
    """The backend, framework and Keras versions of this process. Runs of one config on different backends or
    versions are not the same experiment (a framework quirk can change a verdict), so reports keep them apart;
    :func:`regbench.training.results.runtime` adds the batch-order scheme."""
    import importlib

    import keras

    backend = keras.backend.backend()
    try:
        version = importlib.import_module(backend).__version__
    except (ImportError, AttributeError):
        version = "?"
    return {"backend": backend, "framework": f"{backend} {version}", "keras": keras.__version__}
