"""The Keras internals regbench touches (regbench/backend/keras_internals.py): they hold for the installed Keras,
and when one breaks, regbench says so instead of silently training another way."""

from __future__ import annotations

import importlib.metadata

import keras
import pytest

from regbench.backend import keras_internals
from regbench.backend.keras_internals import KerasContractError, check_contract, contract_problems


def test_the_installed_keras_is_the_one_the_internals_were_checked_with():
    version = importlib.metadata.version("keras")
    assert version.startswith(keras_internals.SUPPORTED_KERAS + "."), version
    assert contract_problems() == []


@pytest.mark.parametrize("name", ["_symbolic_build", "make_train_function", "train_step"])
def test_a_moved_trainer_internal_fails_loudly(monkeypatch, name):
    monkeypatch.setattr(keras.Model, name, None)  # defined on the backend's trainer class, which Model extends
    with pytest.raises(KerasContractError, match=f"keras.Model.{name} is gone"):
        check_contract()


def test_the_tensorflow_switch_gone_fails_loudly(monkeypatch):
    from keras.src.utils import module_utils

    monkeypatch.delattr(module_utils.tensorflow, "_available")
    with pytest.raises(KerasContractError, match="module_utils.tensorflow._available is gone"):
        check_contract()


def test_another_keras_release_fails_loudly_until_checked(monkeypatch):
    monkeypatch.setattr(keras, "__version__", "3.16.0")
    with pytest.raises(KerasContractError, match="Keras 3.16.0 is installed"):
        check_contract()


def test_the_device_loop_refuses_instead_of_falling_back(monkeypatch):
    """Before, a Keras without _symbolic_build made the JAX loop quietly feed batches from the host."""
    monkeypatch.setattr(keras.Model, "_symbolic_build", None)
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(loss="mse", jit_compile=True)
    with pytest.raises(KerasContractError):
        keras_internals.train_on_device(model, None, None, None, None)
