"""What other tools read: TensorBoard logs in every run folder, and an MLflow store."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regbench.cli import app

runner = CliRunner()
needs_tensorboard = pytest.mark.skipif(
    importlib.util.find_spec("tensorboard") is None, reason="needs tensorboard: pip install 'regbench[tensorboard]'"
)


def scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"tensors": 0})
    acc.Reload()
    import tensorflow as tf

    def value(event):
        array = tf.make_ndarray(event.tensor_proto)
        return float(array) if array.ndim == 0 else array  # _hparams_ tags hold serialized protos

    return {tag: [(e.step, value(e)) for e in acc.Tensors(tag)] for tag in acc.Tags()["tensors"]}


@needs_tensorboard
def test_tensorboard_logs_in_every_run_folder(tmp_path: Path, data_dir: Path, tiny_study: Path):
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["run", str(tiny_study), "--tensorboard", "--fuse", "--seeds", "0,1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    [exp] = list(out.iterdir())
    folders = sorted(p.parent for p in exp.glob("*/seed-*/metrics.json"))
    assert len(folders) == 4
    for folder in folders:
        history = (folder / "history.csv").read_text().splitlines()
        train = scalars(folder / "tensorboard" / "train")
        validation = scalars(folder / "tensorboard" / "validation")
        assert [step for step, _ in train["epoch_accuracy"]] == [1, 2]
        last_val_acc = float(history[-1].split(",")[history[0].split(",").index("val_accuracy")])
        assert validation["epoch_accuracy"][-1][1] == pytest.approx(last_val_acc)
        root = scalars(folder / "tensorboard")
        metrics = json.loads((folder / "metrics.json").read_text())
        assert root["test_accuracy"][0][1] == pytest.approx(metrics["test_accuracy"])
        assert "_hparams_/session_start_info" in root  # the HParams dashboard lists the run by its config
    assert json.loads((exp / "environment.json").read_text())["tensorboard"] is True


def test_output_tensorboard_in_a_config_and_set(tmp_path: Path, tiny_study: Path):
    from regbench.config.loading import load

    assert load(tiny_study).output.tensorboard is False
    assert load(tiny_study, overrides=["output.tensorboard=true"]).output.tensorboard is True


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs MLflow: pip install 'regbench[mlflow]'")
def test_mlflow_export_twice_holds_each_run_once(tmp_path: Path, data_dir: Path, tiny_study: Path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # MLflow puts a SQLite store's artifacts in ./mlruns

    out = tmp_path / "out"
    assert runner.invoke(app, ["run", str(tiny_study), "--seeds", "0,1", "--out", str(out)]).exit_code == 0
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = runner.invoke(app, ["export", "mlflow", str(out), "--tracking-uri", uri])
    assert first.exit_code == 0, first.output
    assert "Exported 4 run(s) to MLflow experiment(s) tiny; 0 were there already" in first.output
    again = runner.invoke(app, ["export", "mlflow", str(out), "--tracking-uri", uri])
    assert again.exit_code == 0 and "Exported 0 run(s)" in again.output and "4 were there already" in again.output

    client = MlflowClient(tracking_uri=uri)
    [experiment] = [e for e in client.search_experiments() if e.name == "tiny"]
    mlruns = client.search_runs([experiment.experiment_id])
    assert len(mlruns) == 4
    by_name = {(r.data.tags["regbench.variant"], r.data.tags["regbench.seed"]): r for r in mlruns}
    dropout = by_name[("dropout", "1")]
    metrics = json.loads(next(out.glob("*/dropout/seed-1/metrics.json")).read_text())
    assert dropout.data.params["regularization.dropout"] == "[0.3, 0.0]"
    assert dropout.data.params["seed"] == "1"
    assert dropout.data.metrics["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert dropout.data.tags["regbench.run_id"] == metrics["run_id"]
    history = client.get_metric_history(dropout.info.run_id, "val_accuracy")
    assert sorted(m.step for m in history) == [1, 2]
    artifacts = {a.path for a in client.list_artifacts(dropout.info.run_id)}
    assert {"metrics.json", "history.csv", "figures"} <= artifacts


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs MLflow: pip install 'regbench[mlflow]'")
def test_an_export_that_failed_midway_is_completed_by_the_next(tmp_path: Path, monkeypatch):
    """Before, a run whose export failed midway stayed RUNNING with no params or metrics, and the next export
    counted it as exported ("... were there already")."""
    from mlflow.tracking import MlflowClient

    from regbench.store.samples import sample_run

    monkeypatch.chdir(tmp_path)
    exp = tmp_path / "runs" / "s-20261130-120000"
    for seed in (0, 1):
        sample_run(exp, "baseline", seed, 0.97)
        sample_run(exp, "l2", seed, 0.975, config={"regularization": {"l2": 1e-4}})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    real, calls = MlflowClient.log_artifact, []

    def failing(self, run_id, path, artifact_path=None):
        calls.append(path)
        if len(calls) == 3:  # the second run's first artifact
            raise OSError("disk full")
        return real(self, run_id, path, artifact_path)

    monkeypatch.setattr(MlflowClient, "log_artifact", failing)
    first = runner.invoke(app, ["export", "mlflow", str(exp), "--tracking-uri", uri])
    assert first.exit_code == 0, first.output
    assert "export failed: OSError: disk full" in first.output and "Exported 3 run(s)" in first.output
    monkeypatch.setattr(MlflowClient, "log_artifact", real)
    again = runner.invoke(app, ["export", "mlflow", str(exp), "--tracking-uri", uri])
    assert "Exported 1 run(s)" in again.output and "3 were there already" in again.output, again.output

    client = MlflowClient(tracking_uri=uri)
    [experiment] = [e for e in client.search_experiments() if e.name == "s"]
    mlruns = client.search_runs([experiment.experiment_id])
    folders = sorted(r.data.tags["regbench.folder"] for r in mlruns)
    assert folders == sorted(f"{exp.name}/{v}/seed-{s}" for v in ("baseline", "l2") for s in (0, 1))  # each once
    assert all(r.info.status == "FINISHED" and r.data.tags["regbench.exported"] == "true" for r in mlruns)
    assert all(r.data.params and r.data.metrics for r in mlruns)
