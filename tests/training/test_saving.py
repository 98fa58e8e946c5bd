"""Saved models: model.keras in a run folder loads with plain Keras in a fresh process (no regbench), takes the
test images as the dataset stores them (0..255) and gives the run's recorded test accuracy, alone and fused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regbench.cli import app

PLAIN_KERAS = """
import json, sys
import numpy as np
import keras  # plain Keras: nothing of regbench is imported
data = np.load(sys.argv[1])
out = {}
for path in sys.argv[2:]:
    model = keras.saving.load_model(path)
    probs = model.predict(data["x_test"], verbose=0)  # raw uint8 pixels, as the file stores them
    out[path] = [float((probs.argmax(axis=1) == data["y_test"]).mean()), float(np.abs(probs.sum(axis=1) - 1).max())]
print(json.dumps(out))
"""


@pytest.mark.subprocess
@pytest.mark.slow
def test_saved_models_reload_in_plain_keras_with_the_recorded_test_accuracy(tmp_path: Path, data_dir: Path):
    assert "regbench" not in PLAIN_KERAS.replace("nothing of regbench", "")
    study = tmp_path / "saved.yaml"
    study.write_text(
        "name: saved\nmodel: {hidden_units: [16, 8]}\ntrain: {epochs: 2, batch_size: 32, seeds: [0, 1]}\n"
        "output: {save_model: last}\n"
        "variants:\n  baseline: {}\n  dropout: {regularization: {dropout: [0.3, 0.0]}}\n"
        "  best: {regularization: {l2: 1.0e-4}}\n"
    )
    runner = CliRunner()
    folders = {}
    for how, extra in (("fused", []), ("alone", ["--no-fuse"])):
        result = runner.invoke(app, ["run", str(study), "--out", str(tmp_path / how), *extra])
        assert result.exit_code == 0, result.output
        (folders[how],) = (tmp_path / how).iterdir()
    models = sorted(str(p) for f in folders.values() for p in f.glob("*/seed-*/model.keras"))
    assert len(models) == 12
    done = subprocess.run(
        [sys.executable, "-c", PLAIN_KERAS, str(data_dir / "mnist.npz"), *models],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reloaded = json.loads(done.stdout.strip().splitlines()[-1])
    for path, (accuracy, off_one) in reloaded.items():
        recorded = json.loads((Path(path).parent / "metrics.json").read_text())
        assert off_one < 1e-5, "not probabilities"
        assert accuracy == pytest.approx(recorded["test_accuracy"], abs=1 / 64 + 1e-9), path  # one image at most
    fused = json.loads((folders["fused"] / "baseline" / "seed-0" / "metrics.json").read_text())
    assert fused["fused"]["branches"] == 6  # the fused models were branches, saved as plain models


def test_save_model_best_keeps_the_best_validation_epoch(tmp_path: Path, data_dir: Path):
    """With save_model: best, a run on noisy labels whose validation loss is lowest at epoch 4 of 8 is saved with
    that epoch's weights: the saved model's validation loss is the best one in its history, not the last."""
    import keras
    import numpy as np

    from regbench.config.loading import load_text
    from regbench.data import splits_for
    from regbench.training.driver import train_run

    cfg = load_text(
        "name: b\nmodel: {hidden_units: [128]}\ndata: {label_noise: 0.5}\n"
        "train: {epochs: 8, learning_rate: 0.01, batch_size: 16, seeds: [0]}\n"
    ).variants["default"]
    splits = splits_for(cfg, str(data_dir))
    trained = train_run(cfg, splits, 0, save="best")
    history = trained.history
    path = tmp_path / "model.keras"
    path.write_bytes(trained.model)
    model = keras.saving.load_model(path)
    probs = model.predict(np.asarray(splits.x_val * 255.0), verbose=0)
    loss = float(-np.log(np.clip(probs[np.arange(len(probs)), splits.y_val], 1e-7, 1)).mean())
    losses = [h["val_data_loss"] for h in history]
    assert min(losses) < losses[-1], f"the test needs a run whose best epoch is not its last: {losses}"
    assert loss == pytest.approx(min(losses), rel=1e-3), (loss, losses)


def test_save_model_best_of_fused_branches_keeps_each_branchs_best_epoch(tmp_path: Path, data_dir: Path):
    import keras
    import numpy as np

    from regbench.config.loading import load_text
    from regbench.data import splits_for
    from regbench.training.driver import train_fused

    study = load_text(
        "name: b\nmodel: {hidden_units: [128]}\ndata: {label_noise: 0.5}\n"
        "train: {epochs: 8, learning_rate: 0.01, batch_size: 16}\n"
        "variants: {plain: {}, l2: {regularization: {l2: 1.0e-4}}}\n"
    )
    cfgs = list(study.variants.values())
    splits = splits_for(cfgs[0], str(data_dir))
    for trained in train_fused(cfgs, [0, 1], splits, save="best"):
        history = trained.history
        path = tmp_path / "model.keras"
        path.write_bytes(trained.model)
        probs = keras.saving.load_model(path).predict(np.asarray(splits.x_val * 255.0), verbose=0)
        loss = float(-np.log(np.clip(probs[np.arange(len(probs)), splits.y_val], 1e-7, 1)).mean())
        losses = [h["val_data_loss"] for h in history]
        assert loss == pytest.approx(min(losses), rel=1e-3), (loss, losses)
