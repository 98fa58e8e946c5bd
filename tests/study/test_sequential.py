"""Adding seeds until decided keeps the chance of a wrong verdict at the study's alpha: a simulation on synthetic
results through the same rounds (study.sequential.until_decided) and the same verdicts (analysis.summarize) that
`run --until-decided` uses. Looking after every round at the plain alpha would not, and the test shows that too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from regbench.analysis.summary import summarize
from regbench.analysis.verdicts import judge
from regbench.config.choices import TestKind
from regbench.config.loading import load_text
from regbench.config.schema import seed_rounds
from regbench.store.reader import Run
from regbench.store.records import RunRecord
from regbench.store.samples import sample_metrics
from regbench.study.sequential import until_decided

MARGIN = 0.2  # pp, the default for test accuracy
SPREADS = {"seed": 0.15, "run": 0.12}  # pp: what a seed does to every variant alike, and each run on its own


def simulate(true_deltas: dict[str, float], rng: np.random.Generator, first: int, most: int, level: float):
    """One study: the baseline and variants with the given true Δ (pp); rounds of seeds until decided."""
    study = load_text(
        "name: sim\n"
        f"train: {{seeds: {list(range(first))}}}\n"
        f"analysis: {{max_seeds: {most}}}\n"
        "variants:\n  baseline: {}\n" + "".join(f"  {v}: {{}}\n" for v in true_deltas)
    )
    seed_effect = rng.normal(0, SPREADS["seed"], size=most + first)
    runs: dict[tuple[str, int], Run] = {}

    def run_round(current):
        for name, cfg in current.variants.items():
            for seed in cfg.train.seeds:
                if (name, seed) not in runs:
                    acc = 97.5 + true_deltas.get(name, 0.0) + seed_effect[seed] + rng.normal(0, SPREADS["run"])
                    record = RunRecord.of(sample_metrics(seed, acc / 100), "sim", name, {})
                    runs[name, seed] = Run(Path(f"/sim/{name}/seed-{seed}"), Path("/sim"), record)
        # paired: the stronger test, so the rounds decide the most and the rule is tried the hardest
        summaries, _ = summarize(list(runs.values()))
        return judge(summaries, "baseline", "test_accuracy", MARGIN, level or study.level, TestKind.PAIRED)

    rounds = until_decided(study, run_round, lambda r: None)
    rows = run_round(study)  # the final verdicts (nothing new to train)
    return {r.summary.variant: r.verdict.value for r in rows if r.verdict}, rounds


def wrong(verdict: str, delta: float) -> bool:
    """A wrong decision: a direction that is not the true one, or equivalence outside the margin; inconclusive
    is never wrong, only undecided."""
    if verdict == "inconclusive":
        return False
    if verdict == "equivalent":
        return abs(delta) >= MARGIN
    return (verdict == "better") != (delta > 0) or delta == 0


def error_rate(deltas: dict[str, float], studies: int, level: float | None, seed: int = 0):
    rng = np.random.default_rng(seed)
    wrong_studies, decided, seeds_used = 0, 0, []
    for _ in range(studies):
        verdicts, rounds = simulate(deltas, rng, first=3, most=24, level=level)
        wrong_studies += any(wrong(verdicts[v], d) for v, d in deltas.items())
        decided += sum(verdicts[v] != "inconclusive" for v in deltas)
        seeds_used.append(rounds[-1].seeds)
    return wrong_studies / studies, decided / (studies * len(deltas)), float(np.mean(seeds_used))


def test_the_rounds_double_the_seeds_up_to_the_maximum():
    assert seed_rounds([0, 1, 2], 24) == [list(range(3)), list(range(6)), list(range(12)), list(range(24))]
    assert seed_rounds([0, 1, 2], 10)[-1] == list(range(10)) and seed_rounds([5, 9], None) == [[5, 9]]
    assert load_text("name: s\ntrain: {seeds: [0, 1, 2]}\nanalysis: {max_seeds: 24}\n").level == pytest.approx(0.05 / 4)


@pytest.mark.slow
def test_adding_seeds_until_decided_keeps_wrong_verdicts_at_alpha():
    """Under the null (Δ = 0: better or worse is wrong) and under real effects (Δ = +0.5 pp: worse or
    equivalent is wrong; Δ = 0.3 pp, just past the margin: equivalent is wrong), across a table of three
    comparisons, the share of studies with any wrong verdict stays at most alpha = 0.05 (plus Monte Carlo
    error), while the plain rule (alpha at every look) exceeds it."""
    studies = 300
    null = {"a": 0.0, "b": 0.0, "c": 0.0}
    rate, decided, seeds = error_rate(null, studies, level=None)
    assert rate <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / studies), rate
    assert decided > 0.5, f"most null comparisons should end equivalent, {decided:.0%} decided"
    naive, _, _ = error_rate(null, studies, level=0.05)
    assert naive > rate, (naive, rate)  # measured: 0.010 against 0.003

    effects = {"a": 0.5, "b": 0.3, "c": 0.0}
    rate, decided, seeds = error_rate(effects, studies, level=None, seed=1)
    assert rate <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / studies), rate
    assert decided > 0.6 and seeds < 24, (decided, seeds)  # most decided, on fewer seeds than the maximum
    naive, _, _ = error_rate(effects, studies, level=0.05, seed=1)
    assert naive > rate, (naive, rate)  # measured: 0.070 against 0.023


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
    assert "Round of 2 seeds per variant at α = 0.025: undecided: dropout" in result.output
    assert sorted(p.name for p in (exp / "dropout").iterdir()) == ["seed-0", "seed-1", "seed-2", "seed-3"]
    analysis = yaml.safe_load((exp / "config.yaml").read_text())["analysis"]
    assert analysis == {"margin": 0.01, "test": "paired", "alpha": 0.05, "max_seeds": 4, "rounds": 2, "level": 0.025}
    rows = {r["variant"]: r for r in json.loads((exp / "summary.json").read_text())["variants"]}
    assert rows["dropout"]["n"] == 4 and rows["dropout"]["verdict"] in ("better", "worse", "inconclusive")
    assert rows["dropout"]["test_kind"] == "paired" and rows["dropout"]["margin"] == 0.0001

    (exp / "baseline" / "seed-3" / "metrics.json").unlink()  # killed while the last round was training
    result = runner.invoke(app, [*args, "--resume", str(exp)])
    assert result.exit_code == 0, result.output
    assert "1 run(s) trained, 7 skipped" in result.output
    compared = json.loads(runner.invoke(app, ["compare", str(exp), "--format", "json"]).stdout)["variants"]
    assert {r["variant"]: r["verdict"] for r in compared} == {r: rows[r]["verdict"] for r in rows}
