"""Adding seeds until decided keeps the chance of any wrong verdict at the study's alpha: a simulation on synthetic
results through the same rounds (study.sequential.until_decided), the same level (Pocock's boundary for the
rounds planned) and the same verdicts (analysis.verdicts.judge, decided rows frozen) that `run --until-decided`
uses, with the default test, under the null and at the margin, at spreads of 0.15 and 0.5 pp. Looking after
every round at the plain alpha would not keep it, and the test shows that too."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "analysis"))

from simulate import runs as sample_runs  # noqa: E402
from simulate import wrong  # noqa: E402

from regbench.analysis.summary import summarize  # noqa: E402
from regbench.analysis.verdicts import Verdict, judge  # noqa: E402
from regbench.config.loading import load_text  # noqa: E402
from regbench.config.schema import seed_rounds  # noqa: E402
from regbench.study.sequential import until_decided  # noqa: E402

MARGIN = 0.2  # pp, the default for test accuracy


def simulate(true_deltas: dict[str, float], spread: float, rng: np.random.Generator, level: float | None):
    """One study of a baseline and variants with the given true Δ (pp), runs of one seed correlated 0.3 (common
    random numbers); rounds of 3, 6, 12, 24 seeds until decided. Returns each row's final verdict and the
    rounds."""
    study = load_text(
        "name: sim\ntrain: {seeds: [0, 1, 2]}\nanalysis: {max_seeds: 24}\n"
        "variants:\n  baseline: {}\n" + "".join(f"  {v}: {{}}\n" for v in true_deltas)
    )
    shared = rng.standard_normal(24)
    own = {v: rng.standard_normal(24) for v in ["baseline", *true_deltas]}
    decided: dict[str, tuple[int, ...]] = {}
    last: list = []

    def accuracy(name: str) -> np.ndarray:
        return 97.5 + true_deltas.get(name, 0.0) + spread * (0.3**0.5 * shared + 0.7**0.5 * own[name])

    def run_round(current):
        everything = []
        for name, cfg in current.variants.items():
            seeds = list(cfg.train.seeds)
            everything += sample_runs(name, accuracy(name)[seeds], seeds)
        summaries, _ = summarize(everything)
        last[:] = judge(summaries, "baseline", margin=MARGIN, alpha=level or study.level, decided=decided, plans=False)
        return last

    def on_decided(looks):
        for look in looks:
            for label in look["decided"]:
                decided.setdefault(label, tuple(look["seeds"]))

    rounds = until_decided(study, run_round, lambda r: None, on_decided)
    return {r.summary.variant: r for r in last if r.test is not None}, rounds  # the last look's table


def error_rate(deltas: dict[str, float], spread: float, studies: int, level: float | None, seed: int = 0):
    """The share of studies with any wrong verdict, the share of rows decided, the mean seeds of the last round."""
    rng = np.random.default_rng(seed)
    wrong_studies, decided, seeds_used = 0, 0, []
    for _ in range(studies):
        rows, rounds = simulate(deltas, spread, rng, level)
        wrong_studies += any(wrong(rows[v], d, MARGIN) for v, d in deltas.items())
        decided += sum(rows[v].verdict is not Verdict.INCONCLUSIVE for v in deltas)
        seeds_used.append(rounds[-1].seeds)
    return wrong_studies / studies, decided / (studies * len(deltas)), float(np.mean(seeds_used))


def test_the_rounds_double_the_seeds_up_to_the_maximum():
    assert seed_rounds([0, 1, 2], 24) == [list(range(3)), list(range(6)), list(range(12)), list(range(24))]
    assert seed_rounds([0, 1, 2], 10)[-1] == list(range(10)) and seed_rounds([5, 9], None) == [[5, 9]]
    study = load_text("name: s\ntrain: {seeds: [0, 1, 2]}\nanalysis: {max_seeds: 24}\n")
    assert study.level == pytest.approx(0.0160, abs=2e-4)  # Pocock for 4 looks (Bonferroni: 0.0125)


@pytest.mark.slow
@pytest.mark.parametrize("spread", [0.15, 0.5])
def test_adding_seeds_until_decided_keeps_wrong_verdicts_at_alpha(spread):
    """Under the null (Δ = 0: a difference is wrong) and at the margin (Δ = 0.2 pp: equivalence is wrong; Δ = 0.5:
    worse or equivalent is wrong), three rows per table: the share of studies with any wrong verdict stays at most
    alpha = 0.05 (plus Monte Carlo error), while deciding at alpha at every look exceeds it."""
    studies = 400
    bound = 0.05 + 2 * np.sqrt(0.05 * 0.95 / studies)
    for deltas in ({"a": 0.0, "b": 0.0, "c": 0.0}, {"a": 0.2, "b": -0.2, "c": 0.5}):
        rate, decided, seeds = error_rate(deltas, spread, studies, level=None)
        assert rate <= bound, (deltas, spread, rate)
        naive, _, _ = error_rate(deltas, spread, studies, level=0.05)
        assert naive >= rate, (naive, rate)
    if spread == 0.15:
        rate, decided, seeds = error_rate({"a": 0.0, "b": 0.5, "c": -0.5}, spread, studies, level=None, seed=2)
        assert decided > 0.8 and seeds < 24, (decided, seeds)  # most decided, on fewer seeds than the maximum


def test_run_until_decided_adds_rounds_to_one_folder_and_resumes_after_a_kill(tmp_path, data_dir, tiny_study):
    import json

    import yaml
    from typer.testing import CliRunner

    from regbench.cli import app

    runner = CliRunner()
    out = tmp_path / "out"
    args = ["run", str(tiny_study), "--seeds", "0,1", "--until-decided", "4", "--margin", "0.01", "--paired"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    (exp,) = out.iterdir()
    assert "Round of 2 seeds per variant (α = 0.0294 per look, Pocock over 2): undecided: dropout" in result.output
    assert sorted(p.name for p in (exp / "dropout").iterdir()) == ["seed-0", "seed-1", "seed-2", "seed-3"]
    analysis = yaml.safe_load((exp / "config.yaml").read_text())["analysis"]
    assert analysis.pop("level") == pytest.approx(0.0294, abs=1e-4)  # Pocock, two looks
    assert analysis == {"margin": 0.01, "test": "paired", "alpha": 0.05, "max_seeds": 4, "rounds": 2}
    looks = json.loads((exp / "rounds.json").read_text())["rounds"]
    assert [look["seeds"] for look in looks] == [[0, 1], [0, 1, 2, 3]]
    rows = {r["variant"]: r for r in json.loads((exp / "summary.json").read_text())["variants"]}
    assert rows["dropout"]["n"] == 4 and rows["dropout"]["verdict"] in ("better", "worse", "inconclusive")
    assert rows["dropout"]["test_kind"] == "paired" and rows["dropout"]["margin"] == 0.0001

    (exp / "baseline" / "seed-3" / "metrics.json").unlink()  # killed while the last round was training
    result = runner.invoke(app, [*args, "--resume", str(exp)])
    assert result.exit_code == 0, result.output
    assert "1 run(s) trained, 7 skipped" in result.output
    compared = json.loads(runner.invoke(app, ["compare", str(exp), "--format", "json"]).stdout)["variants"]
    assert {r["variant"]: r["verdict"] for r in compared} == {r: rows[r]["verdict"] for r in rows}
