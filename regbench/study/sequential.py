"""Seeds added until decided: run a study, and while a comparison is inconclusive, add a round of seeds (twice
as many each round, up to ``analysis.max_seeds``) to the same folder and look again.

Looking after every round and stopping when decided would raise the chance of a wrong verdict above the study's
alpha (each look is another chance). Every look therefore decides at Pocock's nominal level for the rounds
planned (analysis.stats.sequential_level: the same level at each look, chosen so that the chance of any look's
interval missing the truth is alpha), and a comparison once decided stays decided: its variant gets no more
seeds, and the folder's rounds.json records the look that decided it, so every later table of the folder tests
it on that look's seeds again. tests/study/test_sequential.py measures the error rate on synthetic results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from regbench.analysis.verdicts import Row, Verdict
from regbench.config.schema import Experiment
from regbench.errors import RegbenchError

if TYPE_CHECKING:
    from regbench.study.run import Result, Trainings


@dataclass
class Round:
    seeds: int  # per variant still undecided
    undecided: list[str]  # labels of the rows still inconclusive after it
    compared: int = 0  # rows with a verdict
    decided: list[str] = field(default_factory=list)  # rows decided at this look


def with_seeds(experiment: Experiment, seeds: list[int], kept: dict[str, list[int]] | None = None) -> Experiment:
    """The study with every variant trained on ``seeds``, but those in ``kept`` (variant -> its seeds: decided
    ones) on their own (the rounds stay those of the study as written)."""
    kept = kept or {}
    variants = {
        name: cfg.model_copy(update={"train": cfg.train.model_copy(update={"seeds": list(kept.get(name, seeds))})})
        for name, cfg in experiment.variants.items()
    }
    return experiment.model_copy(update={"variants": variants})


def undecided(rows: list[Row]) -> list[str]:
    return [row.summary.label for row in rows if row.verdict is Verdict.INCONCLUSIVE]


def until_decided(
    experiment: Experiment,
    run_round: Callable[[Experiment], list[Row]],
    on_round: Callable[[Round], None],
    on_decided: Callable[[list[dict]], None] | None = None,
) -> list[Round]:
    """Run the rounds of ``experiment`` (:attr:`Experiment.rounds`) with ``run_round`` (which trains a study into
    the folder and returns its compared rows, at :attr:`Experiment.level`) until no comparison is inconclusive,
    or the last round. A variant whose comparison is decided keeps its seeds from then on; ``on_decided`` gets
    every look so far (its ``seeds`` and the rows it ``decided``) after each, to record them (rounds.json).
    Each round is reported to ``on_round``; returns them all."""
    done: list[Round] = []
    kept: dict[str, list[int]] = {}
    looks: list[dict] = []
    for seeds in experiment.rounds:
        rows = run_round(with_seeds(experiment, seeds, kept) if done else experiment)
        new = [
            row for row in rows if row.verdict not in (None, Verdict.INCONCLUSIVE) and row.summary.variant not in kept
        ]
        for row in new:
            kept[row.summary.variant] = list(seeds)
        looks.append({"seeds": list(seeds), "decided": [row.summary.label for row in new]})
        if on_decided is not None:
            on_decided(looks)
        left = undecided(rows)
        done.append(Round(len(seeds), left, sum(r.verdict is not None for r in rows), [r.summary.label for r in new]))
        on_round(done[-1])
        if not left:
            break
    return done


def rounds_study(experiment: Experiment, train: Trainings, report: Callable[[str], None]) -> Result:
    """Rounds of seeds into one folder until every comparison is decided (:func:`until_decided`); ``report``
    gets a line after each round, and one at the end when comparisons are left undecided."""
    from regbench.analysis.compare import compare
    from regbench.store.writer import ExperimentFolder

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
        left = f"decided: {', '.join(done.decided)}; {left}" if done.decided else left
        left = left if done.compared else "nothing to compare (no baseline and another variant)"
        rounds = len(experiment.rounds)
        at = f"α = {experiment.level:.3g} per look, Pocock over {rounds}"
        report(f"Round of {done.seeds} seeds per variant ({at}): {left}")

    def on_decided(looks: list[dict]) -> None:
        ExperimentFolder(train.last.path, experiment.name).write_rounds(looks)

    rounds = until_decided(experiment, run_round, on_round, on_decided)
    if rounds[-1].undecided:
        report(
            f"Stopped at analysis.max_seeds = {experiment.analysis.max_seeds} seeds per variant with "
            f"{len(rounds[-1].undecided)} comparison(s) undecided; raise it to add more."
        )
    return train.totals()
