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
