"""Convolutional networks and augmentation: the model, its weight statistics, fusion falling back to alone, and
bad values refused with one line."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import pytest
from typer.testing import CliRunner

from regbench.cli import app
from regbench.config.loading import load_text
from regbench.training.model import build_model

runner = CliRunner()

STUDY = """\
name: mixed
model: {hidden_units: [16]}
train: {epochs: 2}
variants:
  mlp: {}
  cnn: {model: {kind: cnn, conv_filters: [4, 8]}}
  cnn_all:
    model: {kind: cnn, conv_filters: [4, 8]}
    regularization: {spatial_dropout: 0.1, batchnorm: true, l2: 1.0e-4, max_norm: 2.0}
    data: {augmentation: {translate: 0.1, rotate: 10, zoom: 0.1, flip: horizontal, noise: 0.05}}
"""


def kinds(model: keras.Model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


def test_cnn_blocks_in_order_with_their_regularizers():
    cfg = load_text(STUDY).variants["cnn_all"]
    model = build_model(cfg, (28, 28))
    assert kinds(model) == [
        "Reshape",
        "RandomTranslation",
        "RandomRotation",
        "RandomZoom",
        "RandomFlip",
        "GaussianNoise",
        *["Conv2D", "BatchNormalization", "Activation", "SpatialDropout2D", "MaxPooling2D"] * 2,
        "Flatten",
        "Dense",
        "BatchNormalization",
        "Activation",
        "Dense",
    ]
    conv = model.get_layer("conv_1")
    assert conv.kernel_size == (3, 3) and conv.use_bias is False
    assert conv.kernel_regularizer.get_config()["l2"] == pytest.approx(1e-4)
    assert conv.kernel_constraint.get_config() == {"max_value": 2.0, "axis": [0, 1, 2]}
    assert model.get_layer("random_rotation").factor == (-10 / 360, 10 / 360)
    plain = build_model(load_text(STUDY).variants["cnn"], (32, 32, 3), num_classes=100)
    assert plain.input_shape == (None, 32, 32, 3) and plain.output_shape == (None, 100)
    assert "Reshape" not in kinds(plain) and kinds(plain).count("MaxPooling2D") == 2


@pytest.mark.slow
@pytest.mark.parametrize("fuse", [False, True])
def test_mlp_and_cnns_train_alone_and_with_fuse(tmp_path: Path, data_dir: Path, fuse: bool):
    study = tmp_path / "s.yaml"
    study.write_text(STUDY)
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(study), "--out", str(out), "--seeds", "0,1"] + (["--fuse"] * fuse))
    assert result.exit_code == 0, result.output
    [exp] = list(out.iterdir())
    records = {p.parent.relative_to(exp).as_posix(): json.loads(p.read_text()) for p in exp.glob("*/*/metrics.json")}
    assert len(records) == 6
    layers = records["cnn_all/seed-0"]["weights"]["layers"]
    assert set(layers) == {"conv_1", "conv_2", "dense_1", "output"}
    assert layers["conv_1"]["size"] == 3 * 3 * 1 * 4 and layers["conv_2"]["max_unit_norm"] <= 2.0 + 1e-5
    if fuse:
        assert records["mlp/seed-0"]["fused"]["branches"] == 2
        assert records["cnn/seed-0"].get("fused") is None  # a CNN trains alone, and the run says why
        assert 'cnn/seed-0, cnn/seed-1 (model.kind is "cnn")' in result.output
        assert "cnn_all/seed-0, cnn_all/seed-1 (data.augmentation is" in result.output


@pytest.mark.parametrize(
    "yaml_body, expected",
    [
        ("model: {kind: transformer}", "model.kind: expected one of 'mlp' or 'cnn', got \"transformer\""),
        ("model: {kind: cnn, conv_filters: [32, -1]}", "model.conv_filters: expected a list of layer widths >= 1"),
        ("model: {kind: cnn, kernel_size: 0}", "model.kernel_size: expected a number >= 1, got 0"),
        (
            "model: {kind: cnn}\nregularization: {spatial_dropout: 1.0}",
            "regularization.spatial_dropout: expected a rate",
        ),
        ("data: {augmentation: {rotate: -5}}", "data.augmentation.rotate: expected a number >= 0.0, got -5"),
        ("data: {augmentation: {mixup: -0.2}}", "data.augmentation.mixup: expected a number >= 0.0, got -0.2"),
        ("data: {dataset: imagenet}", "data.dataset: expected one of 'mnist', 'fashion_mnist', 'cifar10' or"),
        ("model: {conv_filters: [8]}", "model.conv_filters: expected it unset with model.kind mlp (a cnn key)"),
        ("regularization: {spatial_dropout: 0.2}", "regularization.spatial_dropout: expected it unset with model"),
    ],
)
def test_bad_cnn_and_data_values_exit_2_with_one_line(tmp_path: Path, data_dir: Path, yaml_body: str, expected):
    study = tmp_path / "bad.yaml"
    study.write_text(f"name: bad\n{yaml_body}\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(study), "--out", str(out)])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and expected in errors[0], errors
    assert not out.exists()


def test_cnn_keys_work_with_set_and_sweep(tmp_path: Path):
    exp = load_text(
        "name: s\nsweep:\n  model.conv_filters: [[8], [8, 16]]\n",
        overrides=["model.kind=cnn", "model.pool=avg"],
    )
    assert [v.model.conv_filters for v in exp.variants.values()] == [[8], [8, 16]]
    assert {v.model.pool for v in exp.variants.values()} == {"avg"}
