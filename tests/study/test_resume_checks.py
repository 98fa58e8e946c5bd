"""--resume continues a folder of the same study, or says why not; before, another study's folder was taken."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from regbench.cli import app

ROOT = Path(__file__).resolve().parents[2]
OLD = ROOT / "tests" / "fixtures" / "release-0.1.0-tiny-20261130-032648"  # study "tiny"
runner = CliRunner()


def test_resume_refuses_another_studys_folder(tmp_path: Path):
    smoke = ROOT / "configs" / "smoke.yaml"
    for extra in (["--dry-run"], ["--out", str(tmp_path / "out")]):
        result = runner.invoke(app, ["run", str(smoke), "--resume", str(OLD), *extra])
        assert result.exit_code == 2, result.output
        assert f"--resume {OLD}: holds study 'tiny', not 'smoke'" in result.output
    assert not (tmp_path / "out").exists()


def test_resume_of_a_folder_without_a_study_says_so(tmp_path: Path):
    result = runner.invoke(app, ["run", str(ROOT / "configs" / "smoke.yaml"), "--resume", str(tmp_path), "--dry-run"])
    assert result.exit_code == 2 and "not an experiment folder (no readable config.yaml)" in result.output


def test_a_dry_run_of_the_same_study_shows_what_a_resume_would_skip():
    result = runner.invoke(
        app, ["run", str(ROOT / "tests" / "fixtures" / "release-0.1.0-tiny.yaml"), "--resume", str(OLD), "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("finished") == 4


def test_each_run_records_its_data_and_a_resume_on_other_data_is_refused(tmp_path: Path, data_dir: Path, tiny_study):
    import json

    import numpy as np
    from conftest import synthetic_arrays

    from regbench.data import forget_splits

    out = tmp_path / "out"
    assert runner.invoke(app, ["run", str(tiny_study), "--out", str(out)]).exit_code == 0
    (exp,) = out.iterdir()
    record = json.loads((exp / "baseline" / "seed-0" / "metrics.json").read_text())
    assert record["data"]["source"] == str(data_dir) and len(record["data"]["sha256"]) == 64
    assert json.loads((exp / "environment.json").read_text())["data"] == [record["data"]]
    (exp / "dropout" / "seed-0" / "metrics.json").unlink()  # an unfinished run, for the resume to train

    np.savez_compressed(data_dir / "mnist.npz", **synthetic_arrays(seed=1))  # other data, same place
    forget_splits()  # as a new process would
    result = runner.invoke(app, ["run", str(tiny_study), "--resume", str(exp)])
    assert result.exit_code == 2, result.output
    sha = record["data"]["sha256"][:12]
    assert f"{exp / 'baseline' / 'seed-0'}: trained on other data (sha256 {sha}" in result.output
    assert not (exp / "dropout" / "seed-0" / "metrics.json").exists()

    np.savez_compressed(data_dir / "mnist.npz", **synthetic_arrays())  # the data it started with
    forget_splits()
    result = runner.invoke(app, ["run", str(tiny_study), "--resume", str(exp)])
    assert result.exit_code == 0, result.output
    resumed = json.loads((exp / "dropout" / "seed-0" / "metrics.json").read_text())
    assert resumed["data"] == record["data"]
