"""Fused training: K runs as branches of one model must train exactly as they would one by one."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import synthetic_arrays
from typer.testing import CliRunner

from regbench.cli import app
from regbench.config.loading import load_text
from regbench.data.splits import prepare
from regbench.execution.units import Task, make_units
from regbench.training.branches import KeyedDropout, stream_seed
from regbench.training.driver import train_fused, train_run
from regbench.training.fused import build_fused, fusion_key

STUDY = """\
name: f
model: {hidden_units: [16, 8]}
train: {epochs: 3, batch_size: 32}
variants:
  plain: {}
  l2: {regularization: {l2: 0.01}}
  l1: {regularization: {l1: 0.001}}
  stop: {regularization: {l2: 0.001, early_stopping: {patience: 0, min_delta: 10.0}}}
  drop: {regularization: {dropout: [0.5, 0.0]}}
  maxnorm: {regularization: {max_norm: 0.5, l2: 0.001}}
  smooth: {regularization: {label_smoothing: 0.2}}
"""

STREAMS = """\
name: streams
model: {hidden_units: [32, 16]}
train: {epochs: 3, batch_size: 32}
variants:
  plain: {}
  drop: {regularization: {dropout: [0.3, 0.1]}}
  noise: {regularization: {gaussian_noise: 0.2}}
  gdrop: {regularization: {gaussian_dropout: 0.2, l2: 0.001}}
  indrop: {regularization: {input_dropout: 0.2}}
  stop: {regularization: {dropout: 0.2, early_stopping: {patience: 0, min_delta: 0.001}}}
"""

# Optimizer options and schedules are SHARED: each group below trains fused with its own settings.
OPTIONS = {
    "sgd_momentum_exponential": "train: {optimizer: sgd, learning_rate: 0.05, momentum: 0.9, nesterov: true, "
    "lr_schedule: {kind: exponential, decay_rate: 0.5}}",
    "adamw_cosine": "train: {optimizer: adamw, weight_decay: 0.01, lr_schedule: {kind: cosine, warmup_epochs: 1}}",
    "rmsprop_step": "train: {optimizer: rmsprop, momentum: 0.5, lr_schedule: {kind: step, every: 1, factor: 0.5}}",
}


@pytest.fixture(scope="module")
def splits():
    return prepare(synthetic_arrays(n_train=320), validation_split=0.2, seed=0)


@pytest.mark.parametrize(
    "names, seeds",
    [
        # unequal branches per seed: one batch order (input slot) per branch
        (["plain", "l2", "l1", "stop", "plain"], [0, 0, 0, 1, 2]),
        # two seeds, two branches each, interleaved: one slot per seed, branches reordered seed by seed
        (["plain", "l2", "stop", "l1"], [3, 1, 1, 3]),
        # max-norm (with an L2 penalty) and label smoothing beside plain branches
        (["maxnorm", "smooth", "plain", "maxnorm"], [0, 0, 0, 1]),
    ],
)
@pytest.mark.slow
def test_fused_branches_match_runs_one_by_one(splits, names, seeds):
    """Variants without dropout, each branch on its own seed's batch order: every seed's final weights,
    history and test results agree with the run trained alone."""
    exp = load_text(STUDY)
    cfgs = [exp.variants[n] for n in names]
    fused = train_fused(cfgs, seeds, splits)
    counts = {seeds.count(s) for s in seeds}
    assert {t.metrics.fused.batch_orders for t in fused} == {len(set(seeds)) if len(counts) == 1 else len(seeds)}
    for trained, cfg, seed, name in zip(fused, cfgs, seeds, names, strict=True):
        metrics, kernels = trained.metrics, trained.kernels
        assert metrics.seed == seed
        alone_run = train_run(cfg, splits, seed)
        alone = alone_run.metrics
        assert kernels.keys() == alone_run.kernels.keys()
        for layer in kernels:
            np.testing.assert_allclose(kernels[layer], alone_run.kernels[layer], atol=2e-5, err_msg=f"{name}/{layer}")
        assert metrics.epochs_run == alone.epochs_run, name
        assert metrics.best_epoch == alone.best_epoch, name
        assert metrics.restored_best_weights == alone.restored_best_weights, name
        assert metrics.test_accuracy == pytest.approx(alone.test_accuracy, abs=1e-6), name
        assert metrics.test_data_loss == pytest.approx(alone.test_data_loss, rel=1e-4), name
        assert metrics.weights.near_zero_share == pytest.approx(alone.weights.near_zero_share, abs=1e-3)
        for mine, theirs in zip(trained.history, alone_run.history, strict=True):
            for key in ("data_loss", "accuracy", "val_data_loss", "val_accuracy"):
                assert mine[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-6), (name, key)
    if "stop" in names:
        stop = fused[names.index("stop")].metrics
        assert stop.stopped_early is True and stop.epochs_run == 2
    for trained, name in zip(fused, names, strict=True):
        if name == "maxnorm":  # the constraint binds: every unit's incoming weights within c
            assert 0.49 < trained.metrics.weights.max_unit_norm <= 0.5 + 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_optimizer_options_and_schedules_train_fused_as_alone(splits, option):
    exp = load_text(
        STUDY.replace(
            "train: {epochs: 3, batch_size: 32}\n",
            OPTIONS[option].replace("train: {", "train: {epochs: 3, batch_size: 32, ") + "\n",
        )
    )
    names, seeds = ["plain", "l2", "maxnorm"], [0, 0, 0]
    cfgs = [exp.variants[n] for n in names]
    fused = train_fused(cfgs, seeds, splits)
    for trained, cfg, seed, name in zip(fused, cfgs, seeds, names, strict=True):
        alone = train_run(cfg, splits, seed)
        for layer in trained.kernels:
            np.testing.assert_allclose(
                trained.kernels[layer], alone.kernels[layer], atol=5e-5, err_msg=f"{option}/{name}"
            )
        lrs = [h["lr"] for h in trained.history]
        assert lrs == pytest.approx([h["lr"] for h in alone.history], rel=1e-6)
        assert lrs == pytest.approx([cfg.train.learning_rate_at(e) for e in range(3)], rel=1e-6)


@pytest.mark.slow
def test_fused_runs_are_the_runs_alone_for_every_seed(tmp_path, data_dir):
    """The user-level check: `run --fuse` and `run` give each (variant, seed) run the same result, not only
    the first seed's (fused branches once all trained on the first seed's batch order)."""
    study = tmp_path / "s.yaml"
    study.write_text(
        "name: s\nmodel: {hidden_units: [16, 8]}\ntrain: {epochs: 2}\n"
        "variants:\n  baseline: {}\n  l2: {regularization: {l2: 0.001}}\n"
    )
    results = {}
    for mode in ("alone", "fused"):
        out = tmp_path / mode
        args = ["run", str(study), "--seeds", "0,1,2", "--out", str(out)] + (["--fuse"] if mode == "fused" else [])
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        results[mode] = {
            p.parent.relative_to(p.parents[2]).as_posix(): json.loads(p.read_text())
            for p in out.glob("*/*/seed-*/metrics.json")
        }
    assert len(results["alone"]) == 6 and results["alone"].keys() == results["fused"].keys()
    accuracies = set()
    for key, alone in results["alone"].items():
        fused = results["fused"][key]
        assert fused["fused"]["branches"] == 6 and fused["fused"]["batch_orders"] == 3
        assert fused["run_id"] == alone["run_id"], key
        assert fused["test_accuracy"] == pytest.approx(alone["test_accuracy"], abs=1e-9), key
        assert fused["test_data_loss"] == pytest.approx(alone["test_data_loss"], rel=1e-4), key
        accuracies.add((key.split("/")[0], round(alone["test_data_loss"], 6)))
    assert len(accuracies) == 6, "the seeds of a variant should differ"


def test_dropout_masks_only_its_own_branch(splits):
    exp = load_text(STUDY)
    model, _ = build_fused([exp.variants["plain"], exp.variants["drop"]], [0, 0], (28, 28), 10)
    x = splits.x_train[:64, None]  # one batch for both branches
    a, b = (np.asarray(model(x, training=True)) for _ in range(2))
    np.testing.assert_allclose(a[:, 0], b[:, 0], atol=1e-6)  # no dropout: deterministic
    assert np.abs(a[:, 1] - b[:, 1]).max() > 1e-3  # dropout: a new mask each call
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(model(x)))  # inference: no dropout at all
    with_drop = train_fused([exp.variants["plain"], exp.variants["drop"]], [0, 0], splits, shuffle=False)
    without = train_fused([exp.variants["plain"], exp.variants["l2"]], [0, 0], splits, shuffle=False)
    np.testing.assert_allclose(with_drop[0].kernels["dense_1"], without[0].kernels["dense_1"], atol=1e-6)


def test_branch_dropout_draws_for_dropping_branches_only():
    layer = KeyedDropout([0.0, 0.5, 0.0, 0.25], seeds=[3, 4, 5, 6])
    out = np.asarray(layer(np.ones((2000, 4, 16), dtype="float32"), training=True))
    np.testing.assert_array_equal(out[:, [0, 2]], 1.0)  # rate 0: untouched
    for branch, rate in ((1, 0.5), (3, 0.25)):
        kept = out[:, branch] != 0
        assert kept.mean() == pytest.approx(1 - rate, abs=0.01)
        np.testing.assert_allclose(out[:, branch][kept], 1 / (1 - rate), rtol=1e-6)  # kept values rescaled
    assert not np.array_equal(out[:, 1] != 0, out[:, 3] != 0)  # each branch its own mask
    np.testing.assert_array_equal(np.asarray(layer(np.ones((5, 4, 16), dtype="float32"))), 1.0)  # inference


def test_a_runs_masks_are_its_own_whatever_model_it_trains_in():
    """A stream is keyed by its run: the masks a branch draws are the masks the run draws alone, bit for bit,
    whatever the other branches, their number and the branch's place (before: one draw over the whole fused
    activation, so a branch's masks changed with its group)."""
    x = np.ones((64, 16), dtype="float32")
    alone = KeyedDropout([0.3], seeds=[stream_seed(7, "dropout_1")])
    masks = [np.asarray(alone(x, training=True)) for _ in range(3)]
    for k, position in ((2, 0), (7, 6), (32, 13)):
        rates, seeds = [0.5] * k, [stream_seed(s, "dropout_1") for s in range(100, 100 + k)]
        rates[position], seeds[position] = 0.3, stream_seed(7, "dropout_1")
        fused = KeyedDropout(rates, seeds)
        batch = np.ones((64, k, 16), dtype="float32")
        for step in range(3):
            np.testing.assert_array_equal(np.asarray(fused(batch, training=True))[:, position], masks[step])


@pytest.mark.slow
def test_runs_with_dropout_and_noise_are_the_same_runs_alone_and_fused_in_units_of_any_size(splits):
    """Dropout, input dropout, Gaussian noise and dropout, an early-stopped run: alone and as a branch of fused
    models of 2, 7 and 32 at the first and last place, on other seeds beside it. The same epochs, best epoch and
    test accuracy; weights and history to float32 rounding (fused products run in other shapes)."""
    exp = load_text(STREAMS)
    names, fillers = ["drop", "noise", "gdrop", "indrop", "stop"], ["plain", "drop", "noise"]
    alone = {n: train_run(exp.variants[n], splits, 1) for n in names}
    for k, position in ((2, 0), (7, 6), (32, 0), (32, 31)):
        cfgs = [exp.variants[fillers[i % 3]] for i in range(k)]
        seeds = [i % 4 for i in range(k)]
        for name in names:
            cfgs[position], seeds[position] = exp.variants[name], 1
            got, want = train_fused(cfgs, seeds, splits)[position], alone[name]
            label = f"{name} in {k} at {position}"
            for key in ("epochs_run", "best_epoch", "stopped_early", "test_accuracy"):
                assert getattr(got.metrics, key) == getattr(want.metrics, key), (label, key)
            assert got.metrics.test_data_loss == pytest.approx(want.metrics.test_data_loss, rel=1e-5), label
            for layer in want.kernels:
                np.testing.assert_allclose(got.kernels[layer], want.kernels[layer], atol=1e-6, err_msg=label)
            for mine, theirs in zip(got.history, want.history, strict=True):
                for key in ("data_loss", "accuracy", "val_data_loss", "val_accuracy"):
                    assert mine[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-7), (label, key)


def _task(name: str, seed: int, cfg) -> Task:
    return Task(f"{name}/seed-{seed}", name, seed, cfg, f"{name}-{seed}", None)


def test_units_fuse_fusable_runs_and_keep_batchnorm_alone():
    exp = load_text(STUDY + "  bn: {regularization: {batchnorm: true}}\n  long: {train: {epochs: 9}}\n")
    tasks = [_task(n, 0, c) for n, c in exp.variants.items()]
    assert fusion_key(exp.variants["bn"]) is None
    units = make_units(tasks, fuse=True)
    assert sorted(len(u) for u in units) == [1, 1, 7]
    assert [[t.variant for t in u] for u in make_units(tasks, fuse=True, parallel=2) if len(u) > 1] == [
        ["plain", "l2", "l1", "stop"],
        ["drop", "maxnorm", "smooth"],
    ]
    assert all(len(u) == 1 for u in make_units(tasks, fuse=False))


def test_run_with_fuse_writes_the_usual_folder(tmp_path, data_dir, tiny_study):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(tiny_study), "--fuse", "--seeds", "0,1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    [exp] = list(out.iterdir())
    runs = sorted(p.parent.relative_to(exp).as_posix() for p in exp.glob("*/seed-*/metrics.json"))
    assert runs == ["baseline/seed-0", "baseline/seed-1", "dropout/seed-0", "dropout/seed-1"]
    for path in exp.glob("*/seed-*/metrics.json"):
        assert json.loads(path.read_text())["fused"]["branches"] == 4, "the four runs were not trained fused"
    env = json.loads((exp / "environment.json").read_text())
    assert env["fuse"] is True and env["threads"] == 1
    assert "4 run(s) trained" in result.output


def test_units_keep_every_seed_of_a_variant_together():
    """Whole variants per fused unit, so each seed has as many branches as the others (one batch order each)."""
    exp = load_text(STUDY.replace("train: {", "train: {seeds: [0, 1, 2], "))
    tasks = [_task(n, s, c) for n, c in exp.variants.items() for s in (0, 1, 2)]
    units = make_units(tasks, fuse=True, max_branches=8)
    assert [len(u) for u in units] == [6, 6, 6, 3]
    for unit in units:
        counts = {s: sum(t.seed == s for t in unit) for s in (0, 1, 2)}
        assert len(set(counts.values())) == 1, counts


def test_branch_limit_fits_the_memory_and_caps_at_256():
    from regbench.config.schema import VariantConfig
    from regbench.execution.units import MAX_BRANCHES, branch_limit

    mlp = VariantConfig.model_validate({"model": {"hidden_units": [128, 64]}})
    assert branch_limit(mlp, memory_bytes=24 * 2**30) == MAX_BRANCHES == 256  # the seed MLP on 24 GiB: the cap
    wide = VariantConfig.model_validate({"data": {"dataset": "cifar100"}, "model": {"hidden_units": [2048, 2048]}})
    assert 1 < branch_limit(wide, memory_bytes=24 * 2**30) < 64  # about 10.7 M weights per branch: far fewer
    assert branch_limit(wide, memory_bytes=2**20) == 1  # never zero


@pytest.mark.parametrize("rows", [5, 16, 21])
def test_predictions_padded_to_full_batches_are_unchanged(monkeypatch, rows):
    """The last, short prediction batch is padded to EVAL_BATCH rows (one compiled program per set): the rows
    that come back are the model's predictions of exactly those examples, in order."""
    import keras

    from regbench.training import results

    monkeypatch.setattr(results, "EVAL_BATCH", 8)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="softmax")])
    x = np.random.default_rng(0).normal(size=(rows, 3)).astype("float32")
    got = results.predict(model, x)
    assert got.shape == (rows, 4)
    np.testing.assert_allclose(got, keras.ops.convert_to_numpy(model(x)), rtol=1e-6)


VALUES_STUDY = """\
name: values
model: {{hidden_units: [16, 8]}}
train: {{epochs: 1, batch_size: 32}}
variants:
  plain: {{}}
  penalties: {{regularization: {{l1: {l1}, l2: {l2}}}}}
  dropout: {{regularization: {{dropout: [{dropout}, 0.0], input_dropout: {dropout}}}}}
  noise: {{regularization: {{gaussian_noise: {noise}, gaussian_dropout: {dropout}}}}}
"""


@pytest.mark.subprocess
@pytest.mark.slow
def test_other_rates_and_penalties_reuse_the_compiled_programs(tmp_path, data_dir):
    """Per-branch dropout and noise rates and L1/L2 penalties are state of a fused model, not constants of its
    compiled programs: a study with other values (and the same branches at zero) adds nothing to JAX's compile
    cache, so a new sweep of the same shapes starts warm."""
    from conftest import run_in_backend

    cache, study, out = tmp_path / "cache", tmp_path / "values.yaml", tmp_path / "out"
    entries = []
    for values in (
        {"l1": 1e-4, "l2": 1e-3, "dropout": 0.3, "noise": 0.2},
        {"l1": 3e-3, "l2": 2e-5, "dropout": 0.45, "noise": 0.05},
    ):
        study.write_text(VALUES_STUDY.format(**values))
        argv = ["regbench", "run", str(study), "--out", str(out)]
        script = f"import sys\nfrom regbench.cli import main\nsys.argv = {argv!r}\nmain()\n"
        run_in_backend(script, "jax", REGBENCH_COMPILE_CACHE=str(cache))
        entries.append(sorted(p.name for p in cache.iterdir()))
    runs = [json.loads(p.read_text()) for p in out.rglob("metrics.json")]
    assert len(runs) == 8 and all(m["fused"]["branches"] == 4 for m in runs)  # one fused model per study
    assert entries[0] and entries[1] == entries[0]
