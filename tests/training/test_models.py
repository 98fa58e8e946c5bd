"""The model builder: layer types and order, regularizers, dropout placement, batch norm."""

from __future__ import annotations

import keras
import pytest

from regbench.config.loading import load_text
from regbench.training.model import build_model, compile_model


def variant(yaml_body: str):
    return load_text("name: t\n" + yaml_body).variants["default"]


def kinds(model: keras.Model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def test_seed_study_baseline_is_784_128_64_10():
    model = build_model(variant("model: {hidden_units: [128, 64]}\n"))
    assert kinds(model) == ["Flatten", "Dense", "Dense", "Dense"]
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [128, 64, 10]
    assert model.count_params() == 784 * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10
    assert model.layers[-1].activation is keras.activations.softmax
    assert all(layer.kernel_regularizer is None for layer in model.layers if isinstance(layer, keras.layers.Dense))


def test_dropout_only_after_the_first_hidden_layer():
    model = build_model(variant("regularization: {dropout: [0.3, 0.0]}\n"), streams=False)
    assert kinds(model) == ["Flatten", "Dense", "Dropout", "Dense", "Dense"]
    assert model.layers[2].rate == pytest.approx(0.3)
    trained = build_model(variant("regularization: {dropout: [0.3, 0.0]}\n"), seed=4)  # its own stream
    assert kinds(trained) == ["Flatten", "Dense", "KeyedDropout", "Dense", "Dense"]
    assert trained.layers[2].values == pytest.approx([0.7])  # the probability to keep


def test_one_dropout_rate_applies_to_every_hidden_layer():
    body = "model: {hidden_units: [32, 16, 8]}\nregularization: {dropout: 0.5}\n"
    model = build_model(variant(body), streams=False)
    assert kinds(model) == ["Flatten", "Dense", "Dropout", "Dense", "Dropout", "Dense", "Dropout", "Dense"]
    assert {layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)} == {0.5}


def test_l1_l2_penalty_on_every_dense_kernel():
    model = build_model(variant("regularization: {l1: 1.0e-4, l2: 2.0e-4}\n"))
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    for layer in dense:
        cfg = layer.kernel_regularizer.get_config()
        assert cfg["l1"] == pytest.approx(1e-4) and cfg["l2"] == pytest.approx(2e-4)
        assert layer.bias_regularizer is None


def test_batchnorm_sits_between_dense_and_activation():
    model = build_model(variant("regularization: {batchnorm: true, dropout: [0.3, 0.0]}\n"), streams=False)
    assert kinds(model) == [
        "Flatten",
        "Dense",
        "BatchNormalization",
        "Activation",
        "Dropout",
        "Dense",
        "BatchNormalization",
        "Activation",
        "Dense",
    ]
    assert model.layers[1].use_bias is False and model.layers[1].activation is keras.activations.linear


def test_compiled_model_tracks_data_loss_apart_from_penalised_loss():
    import numpy as np

    model = compile_model(
        build_model(variant("model: {hidden_units: [8]}\nregularization: {l2: 1.0}\n")),
        variant("model: {hidden_units: [8]}\n"),
    )
    x = np.random.default_rng(0).random((16, 28, 28)).astype("float32")
    y = np.arange(16) % 10
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    assert result["loss"] > result["data_loss"] + 0.1, "the L2 penalty must show in loss but not in data_loss"


def test_a_layer_is_made_before_its_dropout_so_seeds_give_the_same_first_kernel():
    """Layers draw their random seeds when made: a variant that only adds dropout after the first hidden layer
    starts from the same first-layer weights as the baseline (the order regbench has always used; the published
    tables depend on it)."""
    import numpy as np

    kernels = []
    for body in ("", "regularization: {dropout: [0.3, 0.0]}\n"):
        keras.utils.set_random_seed(0)
        model = build_model(variant(body))
        kernels.append(keras.ops.convert_to_numpy(model.get_layer("dense_1").kernel))
    np.testing.assert_array_equal(kernels[0], kernels[1])


def test_runs_of_one_seed_start_from_the_same_weights_in_every_layer_they_share():
    """Common random numbers: before, a dropout layer made between dense_1 and dense_2 drew a seed, which moved
    the initial weights of dense_2 and the output layer away from the baseline's of the same seed."""
    import numpy as np

    bodies = {
        "baseline": "",
        "dropout": "regularization: {dropout: [0.3, 0.0]}\n",
        "noise+dropout": "regularization: {gaussian_noise: 0.1, dropout: [0.3, 0.3], input_dropout: 0.2}\n",
        "batchnorm": "regularization: {batchnorm: true}\n",
        "l2": "regularization: {l2: 1.0e-4}\n",
    }
    models = {name: build_model(variant(body), seed=7) for name, body in bodies.items()}

    def kernels(model):
        return {layer.name: np.asarray(layer.kernel) for layer in model.layers if isinstance(layer, keras.layers.Dense)}

    base = kernels(models["baseline"])
    assert list(base) == ["dense_1", "dense_2", "output"]
    for name, model in models.items():
        for layer, kernel in kernels(model).items():
            np.testing.assert_array_equal(kernel, base[layer], err_msg=f"{name}: {layer}")
    other_seed = kernels(build_model(variant(""), seed=8))
    assert not any(np.array_equal(other_seed[k], base[k]) for k in base)

    def streams(model):  # each dropout or noise layer's random stream, by name
        return {layer.name: tuple(layer.seeds) for layer in model.layers if hasattr(layer, "seeds")}

    # dropout_1 draws the same masks whether or not noise layers were made before it
    assert streams(models["dropout"])["dropout_1"] == streams(models["noise+dropout"])["dropout_1"]
    assert len(set(streams(models["noise+dropout"]).values())) == 5  # each its own stream
