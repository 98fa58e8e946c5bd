"""Each regularizer is defined once (regbench.components), and fusion handles or refuses every config field."""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from regbench.cli import app
from regbench.config.loading import load_text
from regbench.config.schema import VariantConfig
from regbench.training import components, losses
from regbench.training.branches import KeyedDropout, KeyedGaussianDropout, KeyedGaussianNoise
from regbench.training.fusion import ALONE, FUSION, fusion_key, why_alone
from regbench.training.model import build_model


def schema_fields() -> list[str]:
    """Every field of every config section as dotted keys, from the schema itself; other top-level fields whole."""
    out = []
    for section, info in VariantConfig.model_fields.items():
        model = info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            out += [f"{section}.{name}" for name in model.model_fields]
        else:
            out.append(section)
    return out


def test_every_config_field_is_handled_by_fusion_or_blocks_it():
    """A new knob must say how fusion treats it: otherwise --fuse would silently drop it."""
    fields = schema_fields()
    undeclared = [f for f in fields if f not in FUSION]
    assert not undeclared, f"declare these in a component of regbench/training/components.py: {undeclared}"
    assert not [f for f in FUSION if f not in fields], "a component declares a field the config no longer has"


def test_an_undeclared_or_alone_field_makes_a_run_train_alone(monkeypatch):
    cfg = VariantConfig()
    assert fusion_key(cfg) is not None and why_alone(cfg) is None
    monkeypatch.delitem(FUSION, "regularization.max_norm")  # as if a component forgot its field
    assert fusion_key(cfg) is None
    assert why_alone(cfg) == "regularization.max_norm is not supported by fused training"
    monkeypatch.undo()
    for path, how in FUSION.items():
        if how == ALONE:
            section, key = path.split(".")
            value = {
                "batchnorm": True,
                "clipnorm": 1.0,
                "augmentation": {
                    "translate": 0.1,
                    "rotate": 0.0,
                    "zoom": 0.0,
                    "flip": None,
                    "noise": 0.0,
                    "mixup": 0.0,
                },
                "kind": "cnn",
                "spatial_dropout": 0.1,
            }[key]
            update = {section: {key: value}}
            if key == "spatial_dropout":
                update["model"] = {"kind": "cnn"}
            alone = VariantConfig.model_validate(update)
            assert fusion_key(alone) is None
            assert why_alone(alone) in (f"{path} is {json.dumps(value)}", 'model.kind is "cnn"')


def test_shared_fields_split_fusion_groups_and_per_branch_fields_do_not():
    base = VariantConfig()
    per_branch = VariantConfig.model_validate({"regularization": {"max_norm": 3.0, "gaussian_noise": 0.1}})
    shared = VariantConfig.model_validate({"train": {"optimizer": "sgd", "momentum": 0.9}})
    assert fusion_key(per_branch) == fusion_key(base)
    assert fusion_key(shared) != fusion_key(base)


def kinds(cfg_yaml: str) -> list[str]:
    cfg = load_text("name: t\n" + cfg_yaml).variants["default"]
    return [type(layer).__name__ for layer in build_model(cfg, streams=False).layers]


def test_plain_model_layers_of_the_new_regularizers():
    assert kinds("regularization: {input_dropout: 0.2, gaussian_noise: [0.1, 0.0], gaussian_dropout: 0.3}\n") == [
        "Flatten",
        "Dropout",
        "Dense",
        "GaussianNoise",
        "GaussianDropout",
        "Dense",
        "GaussianDropout",
        "Dense",
    ]
    cfg = load_text("name: t\nregularization: {max_norm: 3.5}\n").variants["default"]
    for layer in build_model(cfg).layers:
        if isinstance(layer, keras.layers.Dense):
            assert layer.kernel_constraint.get_config() == {"max_value": 3.5, "axis": 0}


def test_optimizer_gets_momentum_nesterov_weight_decay_and_clipnorm():
    cfg = VariantConfig.model_validate(
        {"train": {"optimizer": "sgd", "momentum": 0.95, "nesterov": True, "weight_decay": 1e-4, "clipnorm": 2.0}}
    )
    opt = components.optimizer(cfg).get_config()
    assert (opt["momentum"], opt["nesterov"], opt["weight_decay"], opt["clipnorm"]) == (0.95, True, 1e-4, 2.0)
    assert components.optimizer(VariantConfig()).get_config()["weight_decay"] is None


def test_label_smoothing_matches_keras_categorical_cross_entropy():
    y = np.array([0, 3, 9])
    p = np.random.default_rng(0).dirichlet(np.ones(10), size=3).astype("float32")
    ours = np.asarray(losses.smoothed_cross_entropy(y, p, 0.1))
    keras_loss = keras.losses.CategoricalCrossentropy(label_smoothing=0.1, reduction=None)
    np.testing.assert_allclose(ours, np.asarray(keras_loss(np.eye(10)[y], p)), rtol=1e-5)


@pytest.mark.parametrize(
    "layer, check",
    [
        (KeyedDropout([0.0, 0.5, 0.0, 0.25], seeds=[1, 2, 3, 4]), "dropout"),
        (KeyedGaussianNoise([0.0, 0.5, 0.0, 0.25], seeds=[1, 2, 3, 4]), "noise"),
        (KeyedGaussianDropout([0.0, 0.5, 0.0, 0.25], seeds=[1, 2, 3, 4]), "gaussian_dropout"),
    ],
)
def test_branch_noise_layers_touch_only_their_branches_with_keras_statistics(layer, check):
    out = np.asarray(layer(np.ones((4000, 4, 16), dtype="float32"), training=True))
    np.testing.assert_array_equal(out[:, [0, 2]], 1.0)  # value 0: untouched
    for branch, value in ((1, 0.5), (3, 0.25)):
        got = out[:, branch]
        if check == "dropout":
            kept = got != 0
            assert kept.mean() == pytest.approx(1 - value, abs=0.01)
            np.testing.assert_allclose(got[kept], 1 / (1 - value), rtol=1e-6)
        else:
            std = value if check == "noise" else math.sqrt(value / (1 - value))
            assert got.mean() == pytest.approx(1.0, abs=0.01) and got.std() == pytest.approx(std, rel=0.03)
    assert not np.array_equal(out[:, 1], out[:, 3])  # each branch its own random numbers
    np.testing.assert_array_equal(np.asarray(layer(np.ones((5, 4, 16), dtype="float32"))), 1.0)  # inference


MIXED = """\
name: mixed
model: {hidden_units: [16, 8]}
train: {epochs: 3, seeds: [0, 1]}
variants:
  srivastava:
    regularization: {input_dropout: 0.2, dropout: 0.5, max_norm: 0.8}
    train: {optimizer: sgd, learning_rate: 0.05, momentum: 0.9, lr_schedule: {kind: exponential, decay_rate: 0.5}}
  noisy:
    regularization: {gaussian_noise: 0.1, label_smoothing: 0.1}
    train: {optimizer: adamw, weight_decay: 0.01, lr_schedule: {kind: cosine, warmup_epochs: 1}}
  clipped:
    train: {clipnorm: 1.0}
"""


@pytest.mark.slow
@pytest.mark.parametrize("fuse", [False, True])
def test_a_study_mixing_the_new_keys_runs_alone_and_fused(tmp_path: Path, data_dir: Path, fuse: bool):
    study = tmp_path / "mixed.yaml"
    study.write_text(MIXED)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(study), "--out", str(out)] + (["--fuse"] if fuse else []))
    assert result.exit_code == 0, result.output
    [exp] = list(out.iterdir())
    records = {p.parent.relative_to(exp).as_posix(): json.loads(p.read_text()) for p in exp.glob("*/*/metrics.json")}
    assert len(records) == 6
    for key, record in records.items():
        variant = key.split("/")[0]
        if fuse:
            expected = None if variant == "clipped" else 2  # clipnorm trains alone; each variant's two seeds fused
            assert (record.get("fused") or {}).get("branches") == expected, key
        if variant == "srivastava":
            assert max(s["max_unit_norm"] for s in record["weights"]["layers"].values()) <= 0.8 + 1e-5
        lrs = [float(row.split(",")[-1]) for row in (exp / key / "history.csv").read_text().splitlines()[1:]]
        header = (exp / key / "history.csv").read_text().splitlines()[0].split(",")
        assert header[-1] == "lr"
        if variant == "srivastava":
            assert lrs == pytest.approx([0.05, 0.025, 0.0125])
        if variant == "noisy":
            assert lrs[1] > lrs[2] and lrs[0] < lrs[1]  # warm-up, then the cosine falls
    if fuse:
        assert "clipped" in result.output and "train.clipnorm is 1.0" in result.output
        env = json.loads((exp / "environment.json").read_text())
        assert env["trained_alone"] == {
            "clipped/seed-0": "train.clipnorm is 1.0",
            "clipped/seed-1": "train.clipnorm is 1.0",
        }


@pytest.mark.slow
def test_srivastava_table9_one_epoch_cut_runs_fused(tmp_path: Path, data_dir: Path):
    """The paper config as shipped (784-1024-1024-2048-10, SGD with momentum, max-norm, input dropout), cut to
    one epoch: the five variants train as one fused model and carry the paper's references."""
    config = Path(__file__).resolve().parents[2] / "configs" / "srivastava_table9.yaml"
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(config), "--fuse", "--set", "train.epochs=1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "5 run(s) trained, 0 skipped, 0 failed" in result.output
    [exp] = list(out.iterdir())
    records = {p.parent.parent.name: json.loads(p.read_text()) for p in exp.glob("*/seed-0/metrics.json")}
    assert {name: r["config"]["reference"]["value"] for name, r in records.items()} == {
        "l2": 1.62,
        "l2_l1": 1.60,
        "max_norm": 1.35,
        "dropout_l2": 1.25,
        "dropout_max_norm": 1.05,
    }
    assert all(r["fused"]["branches"] == 5 for r in records.values())
    assert records["dropout_max_norm"]["weights"]["layers"]["dense_3"]["max_unit_norm"] <= 3.0 + 1e-5
    assert "reference %" in (exp / "summary.md").read_text()


JAX_DROPOUT = """
import numpy as np
from regbench.backend.quiet_import import import_keras
keras = import_keras()
from regbench.training.branches import KeyedDropout
layer = KeyedDropout([0.0, 0.5, 0.0, 0.25], seeds=[1, 2, 3, 4])
x = np.ones((4000, 4, 16), dtype="float32")
first, second = (np.asarray(layer(x, training=True)) for _ in range(2))
assert (first[:, [0, 2]] == 1.0).all()
for branch, rate in ((1, 0.5), (3, 0.25)):
    kept = first[:, branch] != 0
    assert abs(kept.mean() - (1 - rate)) < 0.01, kept.mean()
    assert np.allclose(first[:, branch][kept], 1 / (1 - rate))
    assert abs((first[:, branch] == 0).mean() - (second[:, branch] == 0).mean()) < 0.01
assert not np.array_equal(first != 0, second != 0)  # new masks at each step
assert abs(np.corrcoef((first[:, 1] != 0).ravel(), (second[:, 1] != 0).ravel())[0, 1]) < 0.02  # independent
again = KeyedDropout([0.0, 0.5, 0.0, 0.25], seeds=[1, 2, 3, 4])
assert np.array_equal(np.asarray(again(x, training=True)), first)  # the same seed, the same masks
print("ok")
"""


@pytest.mark.subprocess
def test_branch_dropout_on_jax_draws_with_xla_threefry_at_the_right_rates():
    """On JAX dropout masks come from lax.rng_bit_generator (branches._bits), not keras.random."""
    pytest.importorskip("jax")
    from conftest import run_in_backend

    assert run_in_backend(JAX_DROPOUT, "jax") == "ok"
