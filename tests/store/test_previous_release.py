"""A folder written by the previous release (tests/fixtures, regbench 0.1.0 at ca983a6) still compares and
resumes: the run-folder format, the run ids and the runtime record are an interface."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from conftest import synthetic_arrays
from typer.testing import CliRunner

from regbench.cli import app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
OLD = FIXTURES / "release-0.1.0-tiny-20261130-032648"
STUDY = FIXTURES / "release-0.1.0-tiny.yaml"
runner = CliRunner()


def test_a_previous_release_folder_compares_as_it_was_written(tmp_path: Path):
    result = runner.invoke(app, ["compare", str(OLD), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {row["variant"]: row for row in json.loads(result.stdout)["variants"]}
    assert sorted(rows) == ["baseline", "dropout"] and {row["n"] for row in rows.values()} == {2}
    for variant, row in rows.items():
        accs = [json.loads((OLD / variant / f"seed-{s}" / "metrics.json").read_text())["test_accuracy"] for s in (0, 1)]
        assert row["test_accuracy_mean"] == np.mean(accs)
    assert rows["dropout"]["p_value"] is not None  # tested against the baseline, as `run` chose it then


def test_a_previous_release_folder_resumes_training_only_what_is_missing(tmp_path: Path, monkeypatch):
    """One run's metrics.json removed (as an interrupted run leaves it): --resume trains that run alone and keeps
    the three finished ones (their run ids match this release's). The new run is a format-3 record: its layers
    are seeded one by one (common random numbers), so it is not the old release's run of that seed, and says so
    by its format."""
    data = tmp_path / "data"
    data.mkdir()
    np.savez_compressed(data / "mnist.npz", **synthetic_arrays())
    folder = tmp_path / OLD.name
    shutil.copytree(OLD, folder)
    lost = folder / "baseline" / "seed-1" / "metrics.json"
    recorded = json.loads(lost.read_text())
    lost.unlink()
    env = json.loads((folder / "environment.json").read_text())
    # The fixture records the versions it was trained with; a newer TensorFlow here is not what this test is about.
    from regbench.training.results import runtime

    env["runtime"] = runtime()
    (folder / "environment.json").write_text(json.dumps(env))
    result = runner.invoke(
        app, ["run", str(STUDY), "--resume", str(folder), "--data-dir", str(data), "--backend", "tensorflow"]
    )
    assert result.exit_code == 0, result.output
    assert "1 run(s) trained, 3 skipped, 0 failed" in result.output
    again = json.loads(lost.read_text())
    assert again["run_id"] == recorded["run_id"]
    assert (recorded["format"], again["format"]) == (2, 3) and 0.0 <= again["test_accuracy"] <= 1.0
    assert (folder / "report.html").is_file() and len(
        json.loads((folder / "environment.json").read_text())["resumed"]
    ) == 1
