"""kill -9 of `regbench run` in the middle of training, then --resume: the interrupted runs continue from their last
checkpointed epoch (not from the first), and every run's metrics.json and history.csv equal those of the same
study run without a kill, apart from timings; the checkpoints are gone once the runs are written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import kill_when, synthetic_arrays

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]

STUDY = """\
name: inside
model: {hidden_units: [64, 32]}
train: {epochs: 12, batch_size: 32, seeds: [0, 1]}
variants:
  baseline: {}
  dropout: {regularization: {dropout: [0.3, 0.1], early_stopping: {patience: 4, monitor: val_accuracy}}}
"""


def run(args: list[str], env: dict[str, str], output=subprocess.PIPE) -> subprocess.Popen:
    command = [sys.executable, "-m", "regbench", "run", *args]
    return subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)


def records(exp: Path) -> dict[str, tuple[dict, str]]:
    out = {}
    for metrics in sorted(exp.glob("*/seed-*/metrics.json")):
        record = json.loads(metrics.read_text())
        record.pop("train_time_s")
        (record.get("fused") or {}).pop("wall_time_s", None)
        history = (metrics.parent / "history.csv").read_text()
        out[f"{metrics.parent.parent.name}/{metrics.parent.name}"] = (record, history)
    return out


@pytest.mark.parametrize("how", ["fused-jax", "alone-tensorflow"])
def test_a_run_killed_mid_training_resumes_from_its_checkpoint_and_ends_as_uninterrupted(tmp_path, how):
    data = tmp_path / "data"
    data.mkdir()
    np.savez_compressed(data / "mnist.npz", **synthetic_arrays(n_train=3000, n_test=200))
    study = tmp_path / "inside.yaml"
    study.write_text(STUDY)
    backend = how.split("-")[1]
    env = {**os.environ, "REGBENCH_DATA_DIR": str(data), "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": backend}
    extra = ["--fuse"] if how.startswith("fused") else ["--no-fuse"]

    whole = run([str(study), "--out", str(tmp_path / "whole"), *extra], env)
    output = whole.communicate(timeout=600)[0].decode()
    assert whole.returncode == 0, output[-3000:]
    (uninterrupted,) = (tmp_path / "whole").iterdir()
    assert not (uninterrupted / ".checkpoints").exists()

    out = tmp_path / "killed"
    driver = run([str(study), "--out", str(out), *extra], env, output=subprocess.DEVNULL)

    def epoch_3_checkpointed() -> bool:
        found = list(out.glob("*/.checkpoints/*.npz"))
        return bool(found) and _epochs_done(found[0]) >= 3

    kill_when(driver, epoch_3_checkpointed, every=0.02)
    (exp,) = out.iterdir()
    written = records(exp)
    assert len(written) < 4, "the kill should land before every run is written"

    resumed = run([str(study), "--resume", str(exp), *extra], env)
    output = resumed.communicate(timeout=600)[0].decode()
    assert resumed.returncode == 0, output[-3000:]
    after, expected = records(exp), records(uninterrupted)
    assert set(after) == set(expected)
    continued = [key for key, (record, _) in after.items() if record.pop("resumed_from_epoch", 0) >= 3]
    assert continued, "no run continued from its checkpoint"
    for key, (record, history) in after.items():
        assert history == expected[key][1], key
        assert record == expected[key][0], key
    assert not (exp / ".checkpoints").exists()
    assert "(continued after epoch" in output


def _epochs_done(path: Path) -> int:
    from regbench.store.checkpoints import read_meta

    return int((read_meta(path) or {}).get("epochs_done", 0))
