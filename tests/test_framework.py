"""The private Keras internals regbench touches (regbench/framework.py), checked so that a Keras upgrade that
moves them fails here, loudly, instead of silently slowing or changing runs. pyproject.toml pins the Keras range
they were tested with."""

from __future__ import annotations

import importlib.metadata


def test_keras_is_in_the_tested_range():
    version = tuple(int(p) for p in importlib.metadata.version("keras").split(".")[:2])
    assert (3, 15) <= version < (3, 16), "framework.py was tested with Keras 3.15; check its patches, then widen"


def test_the_tensorflow_switch_that_jax_processes_flip_still_exists():
    """framework._skip_tensorflow_on_other_backends sets this flag so that set_random_seed does not import TF."""
    from keras.src.utils import module_utils

    assert hasattr(module_utils, "tensorflow") and hasattr(module_utils.tensorflow, "_available")
