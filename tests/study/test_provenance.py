"""Where numbers came from: environment.json records the regbench version, the study file's sha256, the --set
overrides and, for a study in a git repository, the commit and whether the tree had uncommitted changes."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regbench import __version__
from regbench.cli import app

runner = CliRunner()


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_study_in_git_records_its_commit_clean_and_dirty(tmp_path: Path, data_dir: Path, tiny_study: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    study = repo / "tiny.yaml"
    shutil.copy(tiny_study, study)
    git(repo, "add", "tiny.yaml")
    git(repo, "commit", "-q", "-m", "study")
    head = git(repo, "rev-parse", "HEAD")

    def provenance(out: Path, *extra: str) -> dict:
        result = runner.invoke(app, ["run", str(study), "--out", str(out), *extra])
        assert result.exit_code == 0, result.output
        (exp,) = out.iterdir()
        return json.loads((exp / "environment.json").read_text())["provenance"]

    clean = provenance(tmp_path / "clean", "--set", "train.seeds=[0]")
    assert clean == {
        "regbench": __version__,
        "config_file": str(study),
        "config_sha256": hashlib.sha256(study.read_bytes()).hexdigest(),
        "overrides": ["train.seeds=[0]"],
        "git": {"commit": head, "dirty": False, "repository": str(repo.resolve())},
    }
    study.write_text(study.read_text().replace("epochs: 2", "epochs: 1"))  # an uncommitted change
    dirty = provenance(tmp_path / "dirty")
    assert dirty["git"]["commit"] == head and dirty["git"]["dirty"] is True
    assert dirty["config_sha256"] != clean["config_sha256"]

    shown = runner.invoke(app, ["compare", str(tmp_path / "clean"), str(tmp_path / "dirty"), "--provenance"])
    assert shown.exit_code == 0, shown.output
    assert f"{head[:10]} (dirty)" in shown.output and clean["config_sha256"][:12] in shown.output


def test_a_study_outside_git_records_no_commit(tmp_path: Path, data_dir: Path, tiny_study: Path):
    result = runner.invoke(app, ["run", str(tiny_study), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (exp,) = (tmp_path / "out").iterdir()
    recorded = json.loads((exp / "environment.json").read_text())["provenance"]
    assert recorded["git"] is None and recorded["config_sha256"] == hashlib.sha256(tiny_study.read_bytes()).hexdigest()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("route", ["fsmonitor", "clean filter"])
def test_a_studys_repository_never_runs_its_own_commands(tmp_path: Path, data_dir: Path, tiny_study: Path, route):
    """A study received with its .git: git would run the repository's core.fsmonitor program, or the clean
    filter its .gitattributes names, when asked for the dirty state (before: `git status` on every run).
    regbench reads the commit and the index itself: the commands never run, the provenance is still there."""
    repo = tmp_path / "received"
    repo.mkdir()
    git(repo, "init", "-q")
    study = repo / "tiny.yaml"
    shutil.copy(tiny_study, study)
    git(repo, "add", "tiny.yaml")
    git(repo, "commit", "-q", "-m", "study")
    head = git(repo, "rev-parse", "HEAD")
    marker = tmp_path / "ran"
    command = f"touch {marker}"
    if route == "fsmonitor":
        git(repo, "config", "core.fsmonitor", f"{command}; false")
    else:
        (repo / ".gitattributes").write_text("*.yaml filter=evil\n")
        git(repo, "config", "filter.evil.clean", f"{command}; cat")
    study.touch()  # a newer mtime: git would hash the file again, through its filter
    subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True)
    assert marker.exists(), "git itself runs the command: the test's route is real"
    marker.unlink()
    result = runner.invoke(app, ["run", str(study), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert not marker.exists(), "regbench ran the repository's command"
    (exp,) = (tmp_path / "out").iterdir()
    recorded = json.loads((exp / "environment.json").read_text())["provenance"]["git"]
    assert recorded["commit"] == head and recorded["dirty"] is False


def test_git_state_reads_packed_refs_and_index_formats(tmp_path: Path):
    """The reader itself, on a repository git made: a packed ref, index format 4, a deleted file."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    from regbench.study.gitstate import git_state

    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q")
    for name in ("a.txt", "sub/b.txt"):
        (repo / name).parent.mkdir(exist_ok=True)
        (repo / name).write_text(name)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "two")
    git(repo, "pack-refs", "--all")
    git(repo, "update-index", "--index-version", "4")
    state = git_state(repo / "sub")
    assert state == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": False, "repository": str(repo.resolve())}
    (repo / "sub" / "b.txt").unlink()
    assert git_state(repo)["dirty"] is True
    assert git_state(tmp_path) is None
