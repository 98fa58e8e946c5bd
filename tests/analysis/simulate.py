"""Tables of synthetic runs with chosen true differences, judged by the code that judges real ones
(analysis.summary.summarize and analysis.verdicts.judge): for the simulations of the verdicts' error rates."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from regbench.analysis.summary import summarize
from regbench.analysis.verdicts import Row, Verdict, judge
from regbench.config.choices import TestKind
from regbench.store.reader import Run
from regbench.store.records import RunRecord
from regbench.store.samples import sample_metrics

TEMPLATE = RunRecord.of(sample_metrics(0, 0.975), "sim", "baseline", {})
FOLDER = Path("/sim/sim-20261201-120000")


def runs(name: str, accuracies_pp: np.ndarray, seeds: list[int]) -> list[Run]:
    """One variant's runs: test accuracy in percent, one per seed, as records of one experiment folder."""
    return [
        Run(
            FOLDER / name / f"seed-{s}",
            FOLDER,
            TEMPLATE.model_copy(update={"seed": s, "variant": name, "test_accuracy": a / 100}),
        )
        for s, a in zip(seeds, accuracies_pp, strict=True)
    ]


def table(
    deltas: list[float],
    spreads: list[float],
    n: int,
    rng: np.random.Generator,
    correlation: float = 0.0,
    margin: float = 0.2,
    alpha: float = 0.05,
    test: TestKind = TestKind.AUTO,
    base_spread: float | None = None,
    plans: bool = False,
) -> list[Row]:
    """A table of a baseline and one row per true Δ (pp) with its per-run spread (pp); runs of one seed
    correlated by ``correlation`` with the baseline's (common random numbers)."""
    seeds = list(range(n))
    base_spread = spreads[0] if base_spread is None else base_spread
    z = rng.standard_normal(n)
    everything = runs("baseline", 97.5 + base_spread * z, seeds)
    for i, (delta, spread) in enumerate(zip(deltas, spreads, strict=True)):
        own = correlation * z + np.sqrt(1 - correlation**2) * rng.standard_normal(n)
        everything += runs(f"v{i}", 97.5 + delta + spread * own, seeds)
    summaries, _ = summarize(everything)
    return judge(summaries, "baseline", margin=margin, alpha=alpha, test=test, plans=plans)


def wrong(row: Row, delta: float, margin: float = 0.2) -> bool:
    """Whether a row's verdict is wrong about its true Δ (pp): a difference in the wrong direction (or any, at
    Δ = 0), equivalence or "within the margin" outside it. Inconclusive is never wrong, only undecided."""
    t = row.test
    if t is None or t.verdict is Verdict.INCONCLUSIVE:
        return False
    if t.within_margin and abs(delta) >= margin:
        return True
    if t.verdict is Verdict.EQUIVALENT:
        return False
    return delta == 0 or (t.verdict is Verdict.BETTER) != (delta > 0)
