"""--resume of a folder from someone else (issue 31): every check is done before anything is written, no link in
the folder is followed, a damaged or foreign search database is one line, and a study started with --set
resumes with the command its interrupt printed (or with --resume alone). Each failed on 9bb466c: it trained and
wrote through the link, changed another study's search.db, showed a traceback, or refused its own folder."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, tree_state
from typer.testing import CliRunner

from regbench.cli import app
from regbench.config.loading import load, resolved_dict
from regbench.store.writer import ExperimentFolder

runner = CliRunner()

SEARCH = """\
name: srch
model: {hidden_units: [16, 8]}
train: {epochs: 1, batch_size: 32, seeds: [0]}
search:
  trials: 2
  batch: 2
  space:
    regularization.dropout: {low: 0.0, high: 0.6}
"""


def started(study: Path, out: Path) -> Path:
    """The folder a run of ``study`` makes before its first run finishes: config.yaml and environment.json."""
    experiment = load(study)
    folder = ExperimentFolder.create(out, experiment.name)
    folder.write_header(resolved_dict(experiment), {"regbench": "0.1.0"})
    return folder.path


def one_error_line(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in output, output
    return errors[0]


PLANTED = {  # what is replaced by a link, to what
    "environment.json": "file",
    "config.yaml": "file",
    "baseline": "folder",
    "baseline/seed-0": "folder",
    ".checkpoints": "folder",
    "rounds.json": "file",
}


@pytest.mark.parametrize("place", list(PLANTED))
def test_resume_follows_no_link_in_the_folder(tmp_path: Path, data_dir: Path, tiny_study: Path, place: str):
    exp = started(tiny_study, tmp_path / "runs")
    target = tmp_path / "elsewhere" / place.replace("/", "_")
    if PLANTED[place] == "folder":
        target.mkdir(parents=True)
    else:
        target.parent.mkdir()
        linked = exp / place
        target.write_bytes(linked.read_bytes() if linked.exists() else b"{}")
        linked.unlink(missing_ok=True)
    (exp / place).parent.mkdir(parents=True, exist_ok=True)
    (exp / place).symlink_to(target)
    before = tree_state(tmp_path, exp)
    result = runner.invoke(app, ["run", str(tiny_study), "--resume", str(exp)])
    assert result.exit_code == 2, result.output
    assert f"{place} is a symbolic link" in one_error_line(result.output)
    assert tree_state(tmp_path, exp) == before  # nothing written through it, nothing else changed
    assert not list(exp.rglob("metrics.json"))


def _search_folder(tmp_path: Path, text: str = SEARCH) -> tuple[Path, Path]:
    """A search's folder with its Optuna study holding one trial asked (no training)."""
    from regbench.study.search import distributions, open_study

    study = tmp_path / "srch.yaml"
    study.write_text(text)
    experiment = load(study)
    exp = started(study, tmp_path / "runs")
    open_study(exp, experiment).ask(distributions(experiment))
    return study, exp


def test_a_linked_search_database_is_refused_and_left_alone(tmp_path: Path, data_dir: Path):
    pytest.importorskip("optuna")
    study, exp = _search_folder(tmp_path)
    other = tmp_path / "other.db"
    (exp / "search.db").rename(other)
    (exp / "search.db").symlink_to(other)
    before = tree_state(tmp_path, exp)
    result = runner.invoke(app, ["run", str(study), "--resume", str(exp)])
    assert result.exit_code == 2 and "search.db is a symbolic link" in one_error_line(result.output)
    assert tree_state(tmp_path, exp) == before


def test_a_search_resumed_with_another_studys_file_leaves_its_database_alone(tmp_path: Path, data_dir: Path):
    pytest.importorskip("optuna")
    _, exp = _search_folder(tmp_path)
    other = tmp_path / "other.yaml"
    other.write_text(SEARCH.replace("name: srch", "name: other"))
    before = tree_state(tmp_path)
    result = runner.invoke(app, ["run", str(other), "--resume", str(exp)])
    assert result.exit_code == 2 and "holds study 'srch', not 'other'" in one_error_line(result.output)
    assert tree_state(tmp_path) == before  # search.db included


@pytest.mark.parametrize("damage", ["garbage", "cut in half"])
def test_a_damaged_search_database_is_one_line(tmp_path: Path, data_dir: Path, damage: str):
    pytest.importorskip("optuna")
    study, exp = _search_folder(tmp_path)
    database = exp / "search.db"
    data = database.read_bytes()
    database.write_bytes(b"garbage\n" if damage == "garbage" else data[: len(data) // 2])
    result = runner.invoke(app, ["run", str(study), "--resume", str(exp)])
    assert result.exit_code == 2, result.output
    assert "cannot open the search's Optuna study" in one_error_line(result.output)


def test_a_trial_outside_the_space_is_one_line(tmp_path: Path, data_dir: Path):
    """A database changed outside regbench: a trial whose dropout is 5.0 in a space of [0, 0.6]."""
    optuna = pytest.importorskip("optuna")
    study, exp = _search_folder(tmp_path)
    from regbench.study.search import open_study

    wide = {"regularization.dropout": optuna.distributions.FloatDistribution(0.0, 10.0)}
    trial = optuna.trial.create_trial(params={"regularization.dropout": 5.0}, distributions=wide, value=0.5)
    open_study(exp, load(study)).add_trial(trial)
    result = runner.invoke(app, ["run", str(study), "--resume", str(exp)])
    assert result.exit_code == 2, result.output
    assert "regularization.dropout = 5.0 is outside [0.0, 0.6]" in one_error_line(result.output)


@pytest.mark.subprocess
def test_an_interrupted_study_resumes_with_the_command_it_printed(tmp_path: Path, data_dir: Path, tiny_study: Path):
    """Before, the printed command dropped --set, and running it gave four 'holds run ... of another config'."""
    out = tmp_path / "o"
    args = ["run", str(tiny_study), "--set", "train.epochs=60", "--no-fuse", "--out", str(out)]
    import keras  # the resume below runs in this process: the run must use its backend

    env = {**os.environ, "REGBENCH_DATA_DIR": str(data_dir), "KERAS_BACKEND": keras.backend.backend()}
    proc = subprocess.Popen([sys.executable, "-m", "regbench", *args], stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not list(out.rglob("metrics.json")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    hint = err.strip().splitlines()[-1].strip()
    (exp,) = out.iterdir()
    assert hint == shlex.join(["regbench", "run", str(tiny_study), "--resume", str(exp), "--set", "train.epochs=60"])
    result = runner.invoke(app, shlex.split(hint)[1:])
    assert result.exit_code == 0, result.output
    assert "1 skipped" in result.output and "1 run(s) trained" in result.output
    # and --resume alone takes the overrides the folder records, and says so
    alone = runner.invoke(app, ["run", str(tiny_study), "--resume", str(exp)])
    assert alone.exit_code == 0, alone.output
    assert f"--resume: with the overrides {exp} was started with: --set train.epochs=60" in alone.output
    assert "2 skipped" in alone.output


def test_the_interrupt_hint_before_any_folder_says_run_it_again(tmp_path: Path):
    from regbench.cli.run import _interrupt_hint

    assert _interrupt_hint(ROOT / "s.yaml", None, ["train.epochs=3"]) == [
        "Interrupted before anything was written; run the same command again."
    ]
    assert _interrupt_hint(Path("my study.yaml"), Path("o/s-1"), ["train.epochs=3"], 2) == [
        "Interrupted: 2 run(s) finished in this session and are saved. Continue with:",
        "  regbench run 'my study.yaml' --resume o/s-1 --set train.epochs=3",
    ]
