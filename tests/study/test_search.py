"""search: in a study: Optuna asks trials in batches, each batch trains as variants (fused), the objective is a
validation metric, the study lives in the folder and resumes after kill -9 with no trial lost or repeated."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import kill_when
from typer.testing import CliRunner

from regbench.cli import app
from regbench.config.loading import load_text
from regbench.errors import ConfigError

pytest.importorskip("optuna", reason="Optuna not installed: pip install 'regbench[search]'")

SEARCH = """\
name: srch
model: {hidden_units: [16, 8]}
train: {epochs: 2, batch_size: 32, seeds: [0, 1]}
search:
  trials: 6
  batch: 2
  space:
    regularization.dropout: {low: 0.0, high: 0.6}
    regularization.l2: {low: 1.0e-6, high: 1.0e-2, log: true}
    train.learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}
    train.optimizer: [adam, sgd]
"""


def trials(exp: Path) -> list[tuple[int, str, float | None, dict]]:
    import optuna

    study = optuna.load_study(study_name="srch", storage=f"sqlite:///{exp / 'search.db'}")
    return [(t.number, t.state.name, t.value, t.params) for t in study.get_trials()]


def test_a_search_trains_its_trials_as_variants_and_tells_the_validation_objective(tmp_path, data_dir):
    study = tmp_path / "srch.yaml"
    study.write_text(SEARCH)
    result = CliRunner().invoke(app, ["run", str(study), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (exp,) = (tmp_path / "out").iterdir()
    told = trials(exp)
    assert [(n, state) for n, state, _, _ in told] == [(i, "COMPLETE") for i in range(6)]
    for number, _, value, params in told:  # the objective: mean over the seeds of val_accuracy at the last epoch
        runs = [json.loads((exp / f"trial-{number:03d}" / f"seed-{s}" / "metrics.json").read_text()) for s in (0, 1)]
        assert {r["config"]["regularization"]["l2"] for r in runs} == {params["regularization.l2"]}
        history = [(exp / f"trial-{number:03d}" / f"seed-{s}" / "history.csv").read_text().splitlines() for s in (0, 1)]
        header = history[0][0].split(",")
        last = [float(h[-1].split(",")[header.index("val_accuracy")]) for h in history]
        assert value == pytest.approx(sum(last) / 2)
    assert "Best trial: trial-" in result.output
    for name in ("search_history.png", "search_parallel.png", "search_importance.png"):
        assert (exp / name).is_file()
    assert "The search: objective of each trial" in (exp / "report.html").read_text()
    # each trial has its own learning rate and optimizer, which a fused model shares: a trial's seeds fuse
    assert json.loads((exp / "trial-000" / "seed-0" / "metrics.json").read_text())["fused"]["branches"] == 2


@pytest.mark.subprocess
@pytest.mark.slow
def test_a_search_killed_mid_batch_resumes_with_no_trial_lost_or_repeated(tmp_path, data_dir):
    study = tmp_path / "srch.yaml"
    study.write_text(SEARCH.replace("epochs: 2", "epochs: 6"))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "regbench", "run", str(study), "--no-fuse"]
    driver = subprocess.Popen([*command, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # kill once the second batch is training
    kill_when(driver, lambda: bool(list(out.glob("*/trial-002/seed-0/metrics.json"))), every=0.1)
    (exp,) = out.iterdir()
    before = trials(exp)
    assert any(state == "RUNNING" for _, state, _, _ in before), before  # killed with a trial asked, not told
    result = subprocess.run([*command, "--resume", str(exp)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    after = trials(exp)
    assert [(n, state) for n, state, _, _ in after] == [(i, "COMPLETE") for i in range(6)]
    for number, _, _, params in before:  # the trials asked before the kill kept their values
        assert after[number][3] == params
    folders = sorted(p.parent.name + "/" + p.name for p in exp.glob("trial-*/seed-*"))
    assert folders == [f"trial-{n:03d}/seed-{s}" for n in range(6) for s in (0, 1)]
    assert all((exp / f / "metrics.json").is_file() for f in folders)


@pytest.mark.parametrize(
    "space, message",
    [
        (
            "regularization.dropot: {low: 0.0, high: 0.5}",
            "search.space.regularization.dropot: unknown or unsearchable key",
        ),
        ("train.seeds: [[0], [1]]", "unknown or unsearchable key"),
        ("regularization.l2: {low: 0.1, high: 0.01}", "expected low < high"),
        ("regularization.l2: {low: 0.0, high: 0.01, log: true}", "a log range needs low > 0"),
        (
            "regularization.dropout: {low: 0.0, high: 1.5}",
            "search.space.regularization.dropout: regularization.dropout",
        ),
        ("train.optimizer: [adam, sgdd]", "search.space.train.optimizer: train.optimizer"),
    ],
)
def test_a_bad_search_space_is_one_line_of_error(space: str, message: str):
    text = f"name: s\nsearch:\n  trials: 4\n  space:\n    {space}\n"
    with pytest.raises(ConfigError) as info:
        load_text(text, source="s.yaml")
    assert len(info.value.problems) == 1 and message in info.value.problems[0], info.value.problems


def test_a_search_and_a_sweep_are_not_combined():
    text = (
        "name: s\nsweep: {regularization.l2: [0.0, 0.1]}\nsearch:\n  trials: 4\n  space:\n    train.optimizer: [adam]\n"
    )
    with pytest.raises(ConfigError, match="a study searches or sweeps, not both"):
        load_text(text)


def test_a_search_that_also_asks_for_seeds_until_decided_is_an_error(tmp_path):
    study = tmp_path / "srch.yaml"
    study.write_text(SEARCH)
    result = CliRunner().invoke(app, ["run", str(study), "--until-decided", "8", "--dry-run"])
    assert result.exit_code == 2
    assert "a search's trials are not given seeds until decided" in result.output


def test_dry_run_and_validate_describe_the_search(tmp_path):
    study = tmp_path / "srch.yaml"
    study.write_text(SEARCH)
    validated = CliRunner().invoke(app, ["validate", str(study)])
    assert validated.exit_code == 0 and "a search of 6 trials x 2 seed(s)" in validated.output
    planned = CliRunner().invoke(app, ["run", str(study), "--dry-run"])
    assert planned.exit_code == 0, planned.output
    assert (
        "search: 6 trials in batches of 2 (tpe, seed 0), each on seeds [0, 1]; objective val_accuracy" in planned.output
    )
