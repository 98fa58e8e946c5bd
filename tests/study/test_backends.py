"""run --backends: one study on every named backend, each in its own process, then the cross-backend view."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regbench.cli import app

runner = CliRunner()


@pytest.mark.subprocess
@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs JAX: pip install 'regbench[jax]'")
def test_run_on_two_backends_writes_one_folder_each_and_the_agreement(tmp_path: Path, data_dir: Path, tiny_study):
    out = tmp_path / "out"
    args = ["run", str(tiny_study), "--backends", "tensorflow,jax", "--seeds", "0,1", "--set", "train.epochs=1"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    [parent] = list(out.iterdir())
    assert parent.name.startswith("tiny-backends-")
    for backend in ("tensorflow", "jax"):
        [exp] = list((parent / backend).iterdir())
        records = [json.loads(p.read_text()) for p in exp.glob("*/seed-*/metrics.json")]
        assert len(records) == 4 and {r["runtime"]["backend"] for r in records} == {backend}
        assert json.loads((exp / "environment.json").read_text())["backend"] == backend
    agreement = (parent / "agreement.md").read_text()
    assert "| verdicts agree | p between backends |" in agreement
    assert "| dropout |" in agreement and "Δ (jax)" in agreement
    assert "Does each verdict survive the backend?" in result.output


def test_backends_must_be_known_and_installed(tmp_path: Path, tiny_study):
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(tiny_study), "--backends", "tensorflow,theano", "--out", str(out)])
    assert result.exit_code == 2
    assert "--backends theano: unknown backend; expected some of tensorflow, jax, torch" in result.output
    assert not out.exists()
    result = runner.invoke(app, ["run", str(tiny_study), "--backends", "jax", "--out", str(out)])
    assert result.exit_code == 2 and "expected two or more backends" in result.output


def test_auto_backend_is_jax_for_dense_stacks_tensorflow_for_cnns_and_keras_backend_wins(monkeypatch):
    from regbench.backend.choice import choose_backend

    monkeypatch.delitem(sys.modules, "keras", raising=False)  # as in a fresh process, before Keras is imported
    monkeypatch.setenv("KERAS_BACKEND", "")  # unset for choose_backend; what it sets is undone after the test
    has_jax = importlib.util.find_spec("jax") is not None
    assert choose_backend("auto", convolutional=False)[0] == ("jax" if has_jax else "tensorflow")
    assert os.environ["KERAS_BACKEND"] == ("jax" if has_jax else "tensorflow")  # workers inherit the choice
    monkeypatch.setenv("KERAS_BACKEND", "")
    chosen = choose_backend("auto", convolutional=True)
    assert chosen == ("tensorflow", "auto: fastest installed for convolutional networks")
    monkeypatch.setenv("KERAS_BACKEND", "")
    assert choose_backend("auto", prefer="tensorflow") == ("tensorflow", "the resumed experiment's backend")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert choose_backend("jax") == ("tensorflow", "KERAS_BACKEND is set")
