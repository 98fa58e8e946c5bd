"""The compare use case: read run folders, group them over seeds, test against a baseline, sort."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regbench.analysis.stats import WELCH
from regbench.analysis.summary import ALPHA, METRICS, Group, changed_keys, default_baseline, group_runs, summarize
from regbench.errors import RegbenchError
from regbench.store.identity import comparable_config
from regbench.store.reader import Run, Skipped, find_runs, recorded_analysis


def config_diff(group: Group, base: Group) -> dict[str, tuple[Any, Any]]:
    """Keys whose value differs from the baseline's: key -> (baseline value, this value)."""
    a, b = comparable_config(base.config), comparable_config(group.config)
    return {k: (a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)}


SORT_KEYS = ["variant", "n", *METRICS, "delta", "p_value"]


def one_data_per_dataset(runs: list[Run]) -> tuple[list[Run], list[Skipped]]:
    """Keep, for each dataset, only the runs trained on the same data (content hash in metrics.json ``data``):
    those of the hash most runs share (the first one found on a tie). Runs trained on other data are skipped
    with their reason; runs written before the data were recorded are kept."""

    def dataset(run: Run) -> str:
        return str((run.config.get("data") or {}).get("dataset", "mnist"))

    def sha(run: Run) -> str | None:
        data = run.metrics.get("data")
        return str(data.get("sha256")) if isinstance(data, dict) and data.get("sha256") else None

    counts: dict[str, Counter] = {}
    sources: dict[tuple[str, str], str] = {}
    for run in runs:
        if (digest := sha(run)) is not None:
            counts.setdefault(dataset(run), Counter())[digest] += 1
            sources.setdefault((dataset(run), digest), str(run.metrics["data"].get("source")))
    kept, skipped = [], []
    for run in runs:
        digest, name = sha(run), dataset(run)
        chosen = counts[name].most_common(1)[0][0] if digest is not None else None
        if digest is None or digest == chosen:
            kept.append(run)
            continue
        skipped.append(
            Skipped(
                run.path,
                f"trained on other {name} data (sha256 {digest[:12]} from {sources[name, digest]}) than the "
                f"{counts[name][chosen]} runs compared (sha256 {chosen[:12]} from {sources[name, chosen]}); "
                "compare the runs of one data at a time",
            )
        )
    return kept, skipped


@dataclass
class Comparison:
    groups: list[Group]
    skipped: list[Skipped]
    diff: list[str]
    with_test: bool
    baseline: str | None = None


def compare(
    paths: list[Path],
    baseline: str | None = None,
    sort: str | None = None,
    reverse: bool = False,
    only_changed: bool = False,
    metric: str = "test_accuracy",
    margin: float | None = None,
    seeds: list[int] | None = None,
    test: str | None = None,
) -> Comparison:
    """Read runs under ``paths``, group them by variant and compute the statistics.

    Without ``baseline`` it is picked as :func:`default_baseline` says, the same way for ``run`` and
    ``compare``, so the same runs give the same table. Without ``margin`` (in the metric's column unit), the
    one the compared studies set (``analysis.margin``) is used when they agree on one, else the metric's default.
    Verdicts are decided at the level the studies recorded (``analysis.level``: lower when seeds were added in
    rounds) when they agree on one, else at :data:`ALPHA`; ``test`` (welch or paired) likewise defaults to the
    studies' ``analysis.test``, else Welch's.

    Raises:
        RegbenchError: (exit 2) when no finished run is found, or ``baseline``/``sort`` name nothing known.
    """
    runs, skipped = find_runs(paths)
    if seeds is not None:  # a round of a study that adds seeds: its verdicts are decided on its seeds only
        runs = [r for r in runs if r.seed in seeds]
    runs, other_data = one_data_per_dataset(runs)
    skipped += other_data
    if not runs:
        reasons = [f"  - {s.path}: {s.reason}" for s in skipped]
        raise RegbenchError(
            [
                "no finished run folders found in " + ", ".join(map(str, paths)),
                *reasons,
                "Expected experiment folders written by `regbench run` (e.g. outputs/*).",
            ],
            exit_code=2,
        )
    if metric not in METRICS:
        raise RegbenchError(f"--test {metric}: unknown metric; expected one of: {', '.join(METRICS)}", exit_code=2)
    recorded = [recorded_analysis(d) for d in {r.experiment_dir for r in runs}]  # config.yaml, once per folder
    if baseline is None:
        baseline = default_baseline(group_runs(runs)[0])
        if any(r.searched for r in recorded) and baseline is not None and baseline.startswith("trial-"):
            baseline = None  # trials of a search are not compared with its first trial; name a baseline to test

    def agreed(values: set, default):
        return values.pop() if len(values) == 1 and None not in values else default

    margin = margin if margin is not None else agreed({r.margin for r in recorded}, None)
    level = agreed({r.level for r in recorded}, ALPHA)
    test = test or agreed({r.test for r in recorded}, WELCH)
    try:
        groups, dropped = summarize(runs, baseline, metric, margin, level, test)
    except KeyError:
        labels = [g.label for g in group_runs(runs)[0]]
        hits = [lbl for lbl in labels if lbl.split(" @ ")[0] == baseline]
        why = f"matches {len(hits)} variants; name one by its full label" if hits else "no such variant"
        raise RegbenchError(
            f"--baseline {baseline}: {why}; expected one of: {'; '.join(hits or labels)}", exit_code=2
        ) from None
    if sort is not None:
        if sort not in SORT_KEYS:
            raise RegbenchError(f"--sort {sort}: unknown column; expected one of: {', '.join(SORT_KEYS)}", exit_code=2)

        def key(g: Group) -> tuple:
            if sort == "variant":
                value: Any = g.label
            elif sort == "n":
                value = g.n
            elif sort == "delta":
                value = g.delta
            elif sort == "p_value":
                value = g.p_value
            else:
                value = g.stats[sort]["mean"]
            missing = value is None or (isinstance(value, float) and math.isnan(value))
            return (missing, value if not missing else 0)

        groups = sorted(groups, key=key, reverse=reverse)
        if reverse:  # keep rows without a value at the bottom either way
            groups = [g for g in groups if not key(g)[0]] + [g for g in groups if key(g)[0]]
    diff = changed_keys([g.config for g in groups]) if only_changed else []
    return Comparison(groups, skipped + dropped, diff, with_test=baseline is not None, baseline=baseline)
