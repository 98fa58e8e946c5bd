"""Fused training: K runs as branches of one model must train exactly as they would one by one."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import synthetic_arrays
from typer.testing import CliRunner

from regbench.cli import app
from regbench.config import load_text
from regbench.data import prepare
from regbench.executors import Task, make_jobs
from regbench.fused import BranchDropout, build_fused, fusion_key, train_fused
from regbench.training import train_run

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
"""


@pytest.fixture(scope="module")
def splits():
    return prepare(synthetic_arrays(n_train=320), validation_split=0.2, seed=0)


def test_fused_branches_match_runs_one_by_one(splits):
    """Variants without dropout, same batch order: final weights, history and test results agree."""
    exp = load_text(STUDY)
    names, seeds = ["plain", "l2", "l1", "stop", "plain"], [0, 0, 0, 1, 2]
    cfgs = [exp.variants[n] for n in names]
    fused = train_fused(cfgs, seeds, splits, shuffle=False)
    for (metrics, history, kernels), cfg, seed, name in zip(fused, cfgs, seeds, names, strict=True):
        alone_kernels: dict = {}
        alone, alone_history = train_run(cfg, splits, seed, shuffle=False, kernels_out=alone_kernels)
        assert kernels.keys() == alone_kernels.keys()
        for layer in kernels:
            np.testing.assert_allclose(kernels[layer], alone_kernels[layer], atol=2e-5, err_msg=f"{name}/{layer}")
        assert metrics["epochs_run"] == alone["epochs_run"], name
        assert metrics["best_epoch"] == alone["best_epoch"], name
        assert metrics["restored_best_weights"] == alone["restored_best_weights"], name
        assert metrics["test_accuracy"] == pytest.approx(alone["test_accuracy"], abs=1e-6), name
        assert metrics["test_data_loss"] == pytest.approx(alone["test_data_loss"], rel=1e-4), name
        assert metrics["weights"]["near_zero_share"] == pytest.approx(alone["weights"]["near_zero_share"], abs=1e-3)
        for mine, theirs in zip(history, alone_history, strict=True):
            for key in ("data_loss", "accuracy", "val_data_loss", "val_accuracy"):
                assert mine[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-6), (name, key)
    assert fused[3][0]["stopped_early"] is True and fused[3][0]["epochs_run"] == 2


def test_dropout_masks_only_its_own_branch(splits):
    exp = load_text(STUDY)
    model, _ = build_fused([exp.variants["plain"], exp.variants["drop"]], [0, 0])
    x = splits.x_train[:64]
    a, b = (np.asarray(model(x, training=True)) for _ in range(2))
    np.testing.assert_allclose(a[:, 0], b[:, 0], atol=1e-6)  # no dropout: deterministic
    assert np.abs(a[:, 1] - b[:, 1]).max() > 1e-3  # dropout: a new mask each call
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(model(x)))  # inference: no dropout at all
    with_drop = train_fused([exp.variants["plain"], exp.variants["drop"]], [0, 0], splits, shuffle=False)
    without = train_fused([exp.variants["plain"], exp.variants["l2"]], [0, 0], splits, shuffle=False)
    np.testing.assert_allclose(with_drop[0][2]["dense_1"], without[0][2]["dense_1"], atol=1e-6)


def test_branch_dropout_draws_for_dropping_branches_only():
    layer = BranchDropout([0.0, 0.5, 0.0, 0.25], seed=3)
    out = np.asarray(layer(np.ones((2000, 4, 16), dtype="float32"), training=True))
    np.testing.assert_array_equal(out[:, [0, 2]], 1.0)  # rate 0: untouched
    for branch, rate in ((1, 0.5), (3, 0.25)):
        kept = out[:, branch] != 0
        assert kept.mean() == pytest.approx(1 - rate, abs=0.01)
        np.testing.assert_allclose(out[:, branch][kept], 1 / (1 - rate), rtol=1e-6)  # kept values rescaled
    assert not np.array_equal(out[:, 1] != 0, out[:, 3] != 0)  # each branch its own mask
    np.testing.assert_array_equal(np.asarray(layer(np.ones((5, 4, 16), dtype="float32"))), 1.0)  # inference


def test_jobs_group_fusable_runs_and_keep_batchnorm_alone():
    exp = load_text(STUDY + "  bn: {regularization: {batchnorm: true}}\n  long: {train: {epochs: 9}}\n")
    tasks = [Task(f"{n}/seed-0", n, 0, c.model_dump(mode="json"), None) for n, c in exp.variants.items()]
    assert fusion_key(exp.variants["bn"]) is None
    jobs = make_jobs(tasks, fuse=True)
    assert sorted(len(j) for j in jobs) == [1, 1, 5]
    assert [[t.variant for t in j] for j in make_jobs(tasks, fuse=True, workers=2) if len(j) > 1] == [
        ["plain", "l2", "l1"],
        ["stop", "drop"],
    ]
    assert all(len(j) == 1 for j in make_jobs(tasks, fuse=False))


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
