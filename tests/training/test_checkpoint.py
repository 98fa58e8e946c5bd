"""Resume inside a run: a run (or a fused unit) stopped mid-training continues from its checkpoint, in a new
process, and ends exactly as the same run uninterrupted (history and every metric, to the bit), on TensorFlow and
JAX, alone and fused; and the checkpoint file itself: what it refuses, and what it never does (run code)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from conftest import run_in_backend

from regbench.store import checkpoints
from regbench.training.checkpoint import pack, unpack

# Phase "first": each case trained uninterrupted (no checkpoint), then again with a checkpoint until the epoch
# hook raises at epoch 4 (as a kill would stop it: the checkpoint holds epoch 3). Phase "second", in a new
# process: the interrupted cases again from their checkpoints. Prints every result as JSON.
SCRIPT = r"""
import json, sys
from pathlib import Path
from conftest import synthetic_arrays
from regbench.backend.quiet_import import import_keras
import_keras()
from regbench.config.loading import load_text
from regbench.data.splits import prepare
from regbench.training import checkpoint
from regbench.training.checkpoint import Target, identity
from regbench.training.driver import train_fused, train_run

checkpoint.COST = 1.0  # a checkpoint after every epoch, however short the epochs (see EpochCheckpoint)
phase, folder = sys.argv[1], Path(sys.argv[2])
splits = prepare(synthetic_arrays(n_train=480), validation_split=0.2, seed=0)
exp = load_text('''
name: ckpt
model: {hidden_units: [32, 16]}
train: {epochs: 7, batch_size: 32, lr_schedule: {kind: step, every: 2, factor: 0.5}}
variants:
  drop_stop: {regularization: {dropout: [0.3, 0.1], input_dropout: 0.1,
              early_stopping: {patience: 2, min_delta: 0.02, monitor: val_accuracy}}}
  noise_l1: {regularization: {gaussian_noise: 0.2, l1: 1.0e-4, max_norm: 2.0}}
  batchnorm: {regularization: {batchnorm: true, dropout: 0.2}}
  stops_soon: {regularization: {l2: 1.0e-3, early_stopping: {patience: 0, min_delta: 10.0}}}
''')
v = exp.variants

class Killed(Exception):
    pass

def killer(epoch, logs):
    if epoch == 4:
        raise Killed

def target(name, runs):
    return Target(folder / f"{name}.npz", identity(runs, splits.identity["sha256"]))

def plain(trained):
    metrics = trained.metrics.model_dump(mode="json", exclude={"train_time_s", "fused"})
    return [metrics, trained.history, len(trained.model or b"") > 0]

CASES = {
    "alone_drop_stop": lambda hook, t: [train_run(v["drop_stop"], splits, 3, on_epoch=hook, save="best",
                                                  checkpoint=t)],
    "alone_batchnorm": lambda hook, t: [train_run(v["batchnorm"], splits, 1, on_epoch=hook, checkpoint=t)],
    "fused": lambda hook, t: train_fused(
        [v["drop_stop"], v["noise_l1"], v["stops_soon"], v["drop_stop"]], [0, 0, 0, 1], splits,
        on_epoch=[hook] * 4, save="best", checkpoint=t),
}
out = {}
for name, train in CASES.items():
    t = target(name, [name])
    if phase == "first":
        out[name] = [plain(r) for r in train(None, None)]
        try:
            train(killer, t)
            raise SystemExit("not interrupted")
        except Killed:
            pass
        assert t.path.is_file()
    else:
        out[name] = [plain(r) for r in train(None, t)]
print(json.dumps(out))
"""


@pytest.mark.subprocess
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_run_stopped_mid_training_resumes_to_the_same_result_alone_and_fused(backend, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")

    def phase(name: str) -> dict:
        script = SCRIPT.replace("sys.argv[1]", repr(name)).replace("sys.argv[2]", repr(str(tmp_path)))
        return json.loads(run_in_backend(script, backend))

    first, second = phase("first"), phase("second")  # the second in a new process, as after a kill
    for name, runs in first.items():
        for (uninterrupted, history, _), (resumed, resumed_history, saved) in zip(runs, second[name], strict=True):
            assert resumed.pop("resumed_from_epoch") == 3, name
            assert uninterrupted.pop("resumed_from_epoch") is None, name
            assert resumed_history == history, name
            assert resumed == uninterrupted, name
            assert saved == (name != "alone_batchnorm"), name  # save_model: best, after a resume too
    drop_stop = first["alone_drop_stop"][0][0]
    assert drop_stop["restored_best_weights"]
    fused = [m for m, _, _ in first["fused"]]
    assert fused[2]["stopped_early"] and fused[2]["epochs_run"] < 3  # a branch that had stopped before the kill


def test_pack_keeps_arrays_out_of_the_json_and_back():
    arrays: dict = {}
    value = {"rows": [{"epoch": 1, "loss": 0.5}], "weights": (np.arange(3.0), {"k": np.ones((2, 2))}), "x": None}
    tree = pack(value, arrays)
    json.dumps(tree)
    back = unpack(json.loads(json.dumps(tree)), arrays)
    assert back["rows"] == value["rows"] and back["x"] is None
    np.testing.assert_array_equal(back["weights"][0], np.arange(3.0))
    np.testing.assert_array_equal(back["weights"][1]["k"], np.ones((2, 2)))


def test_a_checkpoint_holding_pickled_objects_is_never_loaded(tmp_path):
    """np.load with allow_pickle=False: a crafted checkpoint (an object array whose unpickling would run code) is
    refused as unreadable; nothing is executed."""
    path = tmp_path / "x.npz"
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    np.savez(path, meta=np.frombuffer(b"{}", dtype=np.uint8), v0=np.array([Payload()], dtype=object))
    with pytest.raises(ValueError):
        checkpoints.read(path)
    assert checkpoints.read_meta(path) == {}
    assert not marker.exists()


def test_a_kept_checkpoint_holds_the_end_of_training_and_continues_to_the_same_result(tmp_path):
    """output.keep_checkpoint: the checkpoint is written at the end too (here an early stop with the best weights
    restored); a run continued from it trains no further epoch and reports what the run reported."""
    from conftest import synthetic_arrays

    from regbench.config.loading import load_text
    from regbench.data.splits import prepare
    from regbench.training.checkpoint import Target, identity
    from regbench.training.driver import train_run

    splits = prepare(synthetic_arrays(n_train=320), validation_split=0.2, seed=0)
    cfg = load_text(
        "name: k\nmodel: {hidden_units: [16]}\ntrain: {epochs: 6, batch_size: 32}\n"
        "variants:\n  v: {regularization: {dropout: 0.2, early_stopping: {patience: 1, min_delta: 10.0}}}\n"
    ).variants["v"]
    target = Target(tmp_path / "k.npz", identity(["k"], splits.identity["sha256"]), keep=True)
    first_run = train_run(cfg, splits, 0, checkpoint=target)
    first = first_run.metrics.model_dump(mode="json", exclude={"train_time_s"})
    assert first["stopped_early"] and first["restored_best_weights"]
    assert checkpoints.read_meta(target.path)["finished"] is True
    again_run = train_run(cfg, splits, 0, checkpoint=target)
    again = again_run.metrics.model_dump(mode="json", exclude={"train_time_s"})
    assert again.pop("resumed_from_epoch") == first["epochs_run"] == len(again_run.history)
    assert first.pop("resumed_from_epoch") is None
    assert again_run.history == first_run.history
    assert again == first


def test_a_checkpoint_of_other_runs_is_not_continued(tmp_path, capsys):
    from conftest import synthetic_arrays

    from regbench.config.loading import load_text
    from regbench.data.splits import prepare
    from regbench.training.checkpoint import Target, identity
    from regbench.training.driver import train_run

    splits = prepare(synthetic_arrays(n_train=160), validation_split=0.2, seed=0)
    cfg = load_text("name: o\nmodel: {hidden_units: [8]}\ntrain: {epochs: 2}\nvariants: {v: {}}\n").variants["v"]
    mine = Target(tmp_path / "o.npz", identity(["o"], splits.identity["sha256"]), keep=True)
    train_run(cfg, splits, 0, checkpoint=mine)
    other = Target(mine.path, identity(["another run"], splits.identity["sha256"]))
    assert train_run(cfg, splits, 0, checkpoint=other).metrics.resumed_from_epoch is None
    assert "belongs to other runs, data or versions; training from the first epoch" in capsys.readouterr().err
    train_run(cfg, splits, 0, checkpoint=mine)  # the other run's checkpoints replaced mine: mine again
    capsys.readouterr()
    meta, arrays = checkpoints.read(mine.path)
    checkpoints.write(mine.path, arrays, {**meta, "parts": {"dict": [["history", {"array": "nowhere"}]]}})
    assert train_run(cfg, splits, 0, checkpoint=mine).metrics.resumed_from_epoch is None
    assert "is damaged (KeyError); training from the first epoch" in capsys.readouterr().err
    mine.path.write_bytes(b"garbage")
    assert train_run(cfg, splits, 0, checkpoint=mine).metrics.resumed_from_epoch is None
    assert "cannot be read" in capsys.readouterr().err


@pytest.mark.parametrize("write_s, written", [(0.0, list(range(1, 20))), (1.0, [1, 6, 11, 16])])
def test_checkpoints_take_at_most_a_tenth_of_the_time(monkeypatch, tmp_path, write_s, written):
    """Epochs of 2 s: a checkpoint that takes no time is written after every epoch but the last; one that takes
    1 s waits 9 s after it for the next."""
    from types import SimpleNamespace

    from regbench.training import checkpoint

    now, saved = [0.0], []

    def save(path, ident, at, model, parts):
        saved.append(at.epochs_done)
        now[0] += write_s

    monkeypatch.setattr(checkpoint, "clock", lambda: now[0])
    monkeypatch.setattr(checkpoint, "save", save)
    callback = checkpoint.EpochCheckpoint(checkpoint.Target(tmp_path / "c.npz", {}), [])
    callback.set_model(SimpleNamespace(stop_training=False))
    callback.set_params({"epochs": 20})
    for epoch in range(20):
        now[0] += 2.0
        callback.on_epoch_end(epoch)
    assert saved == written
