"""A run folder from someone else never makes regbench read, show or upload a file outside it: a symbolic link
in it is skipped with its reason. Before, compare read through them and export mlflow uploaded their target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regbench.cli import app
from regbench.store.samples import sample_run

runner = CliRunner()
SECRET = "ssh-rsa AAAAB3-the-private-line"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "private.txt"
    path.write_text(f"epoch,loss\n{SECRET}\n")
    return path


def test_a_linked_history_is_skipped_without_showing_its_target(tmp_path: Path, secret: Path):
    exp = tmp_path / "runs" / "s-20261130-120000"
    for seed in (0, 1):
        sample_run(exp, "baseline", seed, 0.97)
        sample_run(exp, "l2", seed, 0.975, config={"regularization": {"l2": 1e-4}})
    linked = exp / "l2" / "seed-1" / "history.csv"
    linked.unlink()
    linked.symlink_to(secret)
    result = runner.invoke(app, ["compare", str(exp), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "history.csv is a symbolic link" in result.output
    page = (tmp_path / "out" / "report.html").read_text()
    assert SECRET not in result.output and SECRET not in page


def test_a_linked_metrics_file_is_skipped(tmp_path: Path, secret: Path):
    exp = tmp_path / "runs" / "s-20261130-120000"
    sample_run(exp, "baseline", 0, 0.97)
    other = sample_run(tmp_path / "elsewhere" / "t-20261130-120000", "baseline", 1, 0.5)
    (exp / "baseline" / "seed-1").mkdir()
    (exp / "baseline" / "seed-1" / "metrics.json").symlink_to(other / "metrics.json")
    result = runner.invoke(app, ["compare", str(exp), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["n"] for r in rows["variants"]] == [1]
    assert any("metrics.json is a symbolic link" in s["reason"] for s in rows["skipped"])


def test_the_mlflow_export_uploads_no_linked_figure(tmp_path: Path, secret: Path, monkeypatch):
    pytest.importorskip("mlflow")
    exp = tmp_path / "runs" / "s-20261130-120000"
    sample_run(exp, "baseline", 0, 0.97)
    (exp / "loss.png").symlink_to(secret)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)  # MLflow keeps artifacts under the working directory
    result = runner.invoke(app, ["export", "mlflow", str(exp), "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    uploaded = [p for p in tmp_path.rglob("*") if p.is_file() and ({"mlruns", "mlartifacts"} & set(p.parts))]
    assert {"metrics.json", "history.csv"} <= {p.name for p in uploaded}  # the export did upload the run's files
    assert not any(p.name == "loss.png" for p in uploaded)
    assert not any(SECRET in p.read_text(errors="ignore") for p in uploaded if p.is_file())
