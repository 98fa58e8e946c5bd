"""Seeds added until decided: run a study, and while a comparison is inconclusive, add a round of seeds (twice
as many each round, up to ``analysis.max_seeds``) to the same folder and look again.

Looking after every round and stopping when decided would raise the chance of a wrong verdict above the
study's alpha (each look is another chance); each round's verdicts are therefore decided at alpha divided by
the number of rounds planned (Bonferroni over the looks), which keeps the chance of any wrong verdict at most
alpha however the rounds fall. tests/study/test_sequential.py measures it on synthetic results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from regbench.analysis.verdicts import Row, Verdict
from regbench.config.schema import Experiment
from regbench.errors import RegbenchError

if TYPE_CHECKING:
    from regbench.study.run import Result, Trainings


@dataclass
class Round:
    seeds: int  # per variant
    undecided: list[str]  # labels of the rows still inconclusive after it
    compared: int = 0  # rows with a verdict


def with_seeds(experiment: Experiment, seeds: list[int]) -> Experiment:
    """The study with every variant trained on ``seeds`` (the rounds stay those of the study as written)."""
    variants = {
        name: cfg.model_copy(update={"train": cfg.train.model_copy(update={"seeds": list(seeds)})})
        for name, cfg in experiment.variants.items()
    }
    return experiment.model_copy(update={"variants": variants})


def undecided(rows: list[Row]) -> list[str]:
    return [row.summary.label for row in rows if row.verdict is Verdict.INCONCLUSIVE]


def until_decided(
    experiment: Experiment, run_round: Callable[[Experiment], list[Row]], on_round: Callable[[Round], None]
) -> list[Round]:
    """Run the rounds of ``experiment`` (:attr:`Experiment.rounds`) with ``run_round`` (which trains a study into
    the folder and returns its compared rows, decided at :attr:`Experiment.level`) until no comparison is
    inconclusive, or the last round. Each round is reported to ``on_round``; returns them all."""
    done: list[Round] = []
    for seeds in experiment.rounds:
        rows = run_round(with_seeds(experiment, seeds) if done else experiment)
        done.append(Round(len(seeds), undecided(rows), sum(row.verdict is not None for row in rows)))
        on_round(done[-1])
        if not done[-1].undecided:
            break
    return done


def rounds_study(experiment: Experiment, train: Trainings, report: Callable[[str], None]) -> Result:
    """Rounds of seeds into one folder until every comparison is decided (:func:`until_decided`); ``report``
    gets a line after each round, and one at the end when comparisons are left undecided."""
    from regbench.analysis.compare import compare

    def run_round(current: Experiment) -> list[Row]:
        last = train(current)
        if last.failed:
            raise RegbenchError(
                f"{len(last.failed)} run(s) failed in this round, so no more seeds are added: "
                f"{'; '.join(f'{k}: {e}' for k, e in last.failed.items())}",
                exit_code=1,
            )
        # decided on this round's seeds only, so that a resumed study looks at the data each look saw before
        seeds = sorted({seed for cfg in current.variants.values() for seed in cfg.train.seeds})
        return compare([last.path], seeds=seeds).rows

    def on_round(done: Round) -> None:
        left = f"undecided: {', '.join(done.undecided)}" if done.undecided else "every comparison decided"
        left = left if done.compared else "nothing to compare (no baseline and another variant)"
        report(f"Round of {done.seeds} seeds per variant at α = {experiment.level:.3g}: {left}")

    rounds = until_decided(experiment, run_round, on_round)
    if rounds[-1].undecided:
        report(
            f"Stopped at analysis.max_seeds = {experiment.analysis.max_seeds} seeds per variant with "
            f"{len(rounds[-1].undecided)} comparison(s) undecided; raise it to add more."
        )
    return train.totals()
