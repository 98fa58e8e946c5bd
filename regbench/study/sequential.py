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

from regbench.analysis.summary import Group
from regbench.config.schema import Experiment


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


def undecided(groups: list[Group]) -> list[str]:
    return [g.label for g in groups if g.verdict == "inconclusive"]


def until_decided(
    experiment: Experiment, run_round: Callable[[Experiment], list[Group]], on_round: Callable[[Round], None]
) -> list[Round]:
    """Run the rounds of ``experiment`` (:attr:`Experiment.rounds`) with ``run_round`` (which trains a study into
    the folder and returns its compared groups, decided at :attr:`Experiment.level`) until no comparison is
    inconclusive, or the last round. Each round is reported to ``on_round``; returns them all."""
    done: list[Round] = []
    for seeds in experiment.rounds:
        groups = run_round(with_seeds(experiment, seeds) if done else experiment)
        done.append(Round(len(seeds), undecided(groups), sum(g.verdict is not None for g in groups)))
        on_round(done[-1])
        if not done[-1].undecided:
            break
    return done
