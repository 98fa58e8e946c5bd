"""What a careless user meets in a study file (issue 31): one line per mistake, saying what to write instead.
Each failed on 9bb466c: the study validated and trained wrongly, the message listed every key, or repeated."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from regbench.cli import app
from regbench.config.loading import load_text
from regbench.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def problems(text: str, overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_text(text, source="s.yaml", overrides=overrides)
    return info.value.problems


CASES = {
    "a misspelt regularizer": (
        "name: s\nregularization:\n  droput: 0.3\n",
        ["s.yaml:3: regularization.droput: unknown key; did you mean dropout or input_dropout?"],
    ),
    "a key in the wrong words": (
        "name: s\ndata:\n  subset: 100\n",
        ["s.yaml:3: data.subset: unknown key; did you mean train_subset?"],
    ),
    "a misspelt sweep key": (
        "name: s\nsweep:\n  regularization.droput: [0.1, 0.2]\n",
        [
            "s.yaml:3: sweep.regularization.droput: unknown key; did you mean regularization.dropout or "
            "regularization.input_dropout or regularization.spatial_dropout?"
        ],
    ),
    "seeds twice": (
        "name: s\ntrain:\n  seeds: [0, 1, 0]\n",
        [
            "s.yaml:3: train.seeds: expected each seed once (a seed names its run's folder); 0 is there more than "
            "once, got [0, 1, 0]"
        ],
    ),
    "names that differ only in case": (
        "name: s\nvariants:\n  dropout: {}\n  Dropout: {}\n",
        [
            "s.yaml:4: variants.Dropout: expected a name that differs from 'dropout' by more than case (on macOS and "
            "Windows both name one folder)"
        ],
    ),
    "a name Windows keeps for a device": (
        "name: s\nvariants:\n  baseline: {}\n  nul.x: {}\n",
        [
            "s.yaml:4: variants.nul.x: expected a name Windows can give a folder (not CON, PRN, AUX, NUL, COM0-9, "
            "LPT0-9, nor ending in '.'), got nul.x"
        ],
    ),
    "a study name too long for a folder": (
        "name: " + "s" * 250 + "\n",
        ['s.yaml:1: name: expected at most 200 characters (it names a folder), got "' + "s" * 40],
    ),
    "early stopping that can never stop": (
        "name: s\ntrain: {epochs: 2}\nregularization:\n  early_stopping: {patience: 5}\n",
        [
            "s.yaml:4: regularization.early_stopping.patience: expected patience + start_from_epoch below "
            "train.epochs (2) so that it can ever stop a run, got 5 + 0"
        ],
    ),
    "early_stopping: true": (
        "name: s\nregularization:\n  early_stopping: true\n",
        [
            "s.yaml:3: regularization.early_stopping: expected a mapping of EarlyStopping arguments ({} for their "
            "defaults) or null, got true"
        ],
    ),
    "a bad indent": (
        "name: s\ntrain:\n  epochs: 2\n batch_size: 3\n",
        ["s.yaml:4: invalid YAML: this line's indentation does not match the lines above it (count its spaces)"],
    ),
    "a momentum every variant inherits with adam": (
        "name: s\ntrain: {momentum: 0.9}\nvariants:\n  a: {}\n  b: {}\n  c: {}\n",
        [
            "s.yaml:2: train.momentum: expected null with optimizer adam (only sgd and rmsprop take a momentum), got "
            "0.9 (in every variant)"
        ],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_careless_study_is_one_line_per_mistake(case: str):
    text, expected = CASES[case]
    found = problems(text)
    assert len(found) == len(expected), found
    for line, start in zip(found, expected, strict=True):
        assert line.startswith(start), line


def test_seeds_given_twice_on_the_command_line_are_refused(tmp_path: Path):
    result = runner.invoke(app, ["run", str(ROOT / "configs" / "dropout.yaml"), "--seeds", "0,0", "--dry-run"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: --seeds 0,0: expected each seed once (a seed names its run's folder); 0 more than once"
    )


def test_seeds_on_the_command_line_replace_a_sweeps_seeds():
    """Before, --seeds on a study that sweeps train.seeds 'changed nothing'."""
    result = runner.invoke(app, ["run", str(ROOT / "configs" / "grid.yaml"), "--seeds", "4", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "--set train.seeds=[4]: train.seeds: [0, 1, 2] → [4] in every variant (9)" in result.output


def test_set_on_a_sweeps_variant_names_the_swept_variants():
    result = runner.invoke(
        app, ["run", str(ROOT / "configs" / "grid.yaml"), "--set", "variants.dropout.train.epochs=1", "--dry-run"]
    )
    assert result.exit_code == 2
    assert "this study has no variant 'dropout'; did you mean dropout=0.5,l2=0, " in result.output, result.output


@pytest.mark.parametrize(
    "item, says",
    [
        ("regularization.droput=0.2", "--set regularization.droput: unknown key; did you mean regularization.dropout"),
        ("dropout=0.2", "--set dropout: unknown key; did you mean regularization.dropout"),
        ("analysis.alfa=0.1", "--set analysis.alfa: unknown key; did you mean alpha?"),
    ],
)
def test_set_suggests_the_key_meant(item: str, says: str):
    result = runner.invoke(app, ["run", str(ROOT / "configs" / "dropout.yaml"), "--set", item, "--dry-run"])
    assert result.exit_code == 2 and says in result.output, result.output


def test_a_problem_an_override_makes_names_the_override_once():
    found = problems(
        "name: s\ntrain: {epochs: 2}\nvariants:\n  a: {}\n  b: {}\n", ["regularization.early_stopping.patience=5"]
    )
    assert found == [
        "--set regularization.early_stopping.patience: expected patience + start_from_epoch below train.epochs (2) "
        "so that it can ever stop a run, got 5 + 0 (in every variant)"
    ]


def test_markup_in_a_study_path_is_shown_as_written(tmp_path: Path):
    folder = tmp_path / "[red]x[/]"
    folder.mkdir(parents=True)
    study = folder / "[bold]s.yaml"
    study.write_text("name: s\ntrain: {epochs: 0}\n")
    result = runner.invoke(app, ["validate", str(study)])
    assert result.exit_code == 2
    assert f"{study}:2: train.epochs: expected a number >= 1, got 0" in result.output.replace("\n", "")


def test_markup_in_an_output_folder_is_shown_as_written(tmp_path: Path, data_dir: Path, tiny_study: Path):
    """Before, `--out '[red]o'` printed "Writing .../o/...": the folder named was not the one written."""
    out = tmp_path / "[red]o"
    result = runner.invoke(app, ["run", str(tiny_study), "--out", str(out), "--set", "train.epochs=1"])
    assert result.exit_code == 0, result.output
    (exp,) = out.iterdir()
    text = result.output.replace("\n", "")
    assert f"Writing {exp}/" in text and f"Wrote {exp}/" in text
