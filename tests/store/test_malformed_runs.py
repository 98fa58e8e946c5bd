"""Run folders that are corrupt, hostile or from nowhere: compare skips each with one line saying why, keeps the
good runs, and never shows a traceback. Every case here crashed compare on ca983a6 (exit 1, a traceback) or was
shown as something it is not."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regbench.cli import app
from regbench.store.samples import sample_run

runner = CliRunner()


def _edit(run: Path, **changes) -> None:
    record = json.loads((run / "metrics.json").read_text())
    record.update(changes)
    (run / "metrics.json").write_text(json.dumps(record))


def _replace(run: Path, old: str, new: str) -> None:
    (run / "metrics.json").write_text((run / "metrics.json").read_text().replace(old, new))


SKIPPED: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "json nested 200,000 deep": (
        lambda exp, run: (run / "metrics.json").write_text("[" * 200_000 + "]" * 200_000),
        "nested too deeply",
    ),
    "a ragged history row": (
        lambda exp, run: (run / "history.csv").write_text("epoch,loss\n1,0.5,0.7\n"),
        "corrupt history.csv: line 2 has more cells than the header",
    ),
    "an accuracy of 1.7e308": (lambda exp, run: _edit(run, test_accuracy=1.7e308), "test_accuracy"),
    "a best epoch of 1e400": (lambda exp, run: _replace(run, '"best_epoch": 3', '"best_epoch": 1e400'), "best_epoch"),
    "format 1 with a config that is no mapping": (
        lambda exp, run: _edit(run, format=1, config="oops"),
        "config: expected a mapping, got str",
    ),
    "format true": (lambda exp, run: _edit(run, format=True), "no known format version (format: true)"),
    "an unknown reference metric": (
        lambda exp, run: _edit(
            run, config={**json.loads((run / "metrics.json").read_text())["config"], "reference": {"metric": "x"}}
        ),
        "reference: expected metric test_error or test_accuracy",
    ),
    "a status that is neither finished nor diverged": (lambda exp, run: _edit(run, status="great"), "status"),
}


@pytest.mark.parametrize("case", list(SKIPPED))
def test_a_malformed_run_is_skipped_with_its_reason(tmp_path: Path, case: str):
    exp = tmp_path / "runs" / "s-20261130-120000"
    for seed in (0, 1):
        sample_run(exp, "baseline", seed, 0.97 + seed / 1000)
    bad = sample_run(exp, "l2", 0, 0.5, config={"regularization": {"l2": 1e-4}})
    make, reason = SKIPPED[case]
    make(exp, bad)
    result = runner.invoke(app, ["compare", str(exp), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    skipped = [line for line in result.output.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 1 and str(bad) in skipped[0] and reason in skipped[0], result.output
    assert "Traceback" not in result.output
    rows = json.loads(runner.invoke(app, ["compare", str(exp), "--format", "json"]).stdout)["variants"]
    assert [(r["variant"], r["n"]) for r in rows] == [("baseline", 2)]


def test_an_environment_json_that_is_no_mapping_reads_as_none(tmp_path: Path):
    exp = tmp_path / "runs" / "s-20261130-120000"
    sample_run(exp, "baseline", 0, 0.97)
    (exp / "environment.json").write_text("[]")
    result = runner.invoke(app, ["compare", str(exp)])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output


@pytest.mark.parametrize(
    "name, shown",
    [
        ("evil[/x]", "evil[/x]"),  # rich markup: a MarkupError before
        ("[link=https://example.org/]dropout[/link]", "[link=https://example.org/]dropout[/link]"),  # a hidden link
        ("a\x1b[31mred\x07", "a\\x1b[31mred\\x07"),  # control characters reach the terminal escaped
        ("$\\frac{", "$\\frac{"),  # mathtext in the figures' legends
    ],
)
def test_names_are_shown_as_written_never_as_markup(tmp_path: Path, name: str, shown: str):
    exp = tmp_path / "runs" / "s-20261130-120000"
    for seed in (0, 1):
        sample_run(exp, "baseline", seed, 0.97)
    _edit(sample_run(exp, "other", 0, 0.9, config={"regularization": {"l2": 1e-4}}), variant=name)
    result = runner.invoke(app, ["compare", str(exp), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert shown in result.output and "Traceback" not in result.output
    assert (tmp_path / "out" / "loss.png").is_file()
