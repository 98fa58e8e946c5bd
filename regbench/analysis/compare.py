"""The compare use case: read run folders, pool them over seeds, test against a baseline, sort."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regbench.analysis.summary import METRICS, Summary, changed_keys, default_baseline, summarize
from regbench.analysis.verdicts import Row, judge
from regbench.config.choices import ALPHA, DATASET, TEST, TestKind
from regbench.errors import RegbenchError
from regbench.store.identity import comparable_config
from regbench.store.reader import Run, Skipped, find_runs


def config_diff(summary: Summary, base: Summary) -> dict[str, tuple[Any, Any]]:
    """Keys whose value differs from the baseline's: key -> (baseline value, this value)."""
    a, b = comparable_config(base.config), comparable_config(summary.config)
    return {k: (a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)}


SORT_KEYS = ["variant", "n", *METRICS, "delta", "p_value"]


def one_data_per_dataset(runs: list[Run]) -> tuple[list[Run], list[Skipped]]:
    """Keep, for each dataset, only the runs trained on the same data (content hash in metrics.json ``data``):
    those of the hash most runs share (the first one found on a tie). Runs trained on other data are skipped
    with their reason; runs written before the data were recorded are kept."""

    def dataset(run: Run) -> str:
        return str((run.config.get("data") or {}).get("dataset", DATASET))

    def sha(run: Run) -> str | None:
        data = run.record.data
        return data.sha256 if data is not None and data.sha256 else None

    counts: dict[str, Counter] = {}
    sources: dict[tuple[str, str], str] = {}
    for run in runs:
        if (digest := sha(run)) is not None:
            counts.setdefault(dataset(run), Counter())[digest] += 1
            sources.setdefault((dataset(run), digest), run.record.data.source)
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


@dataclass(frozen=True)
class Comparison:
    """A comparison table: one row per variant summary, what was skipped, the config keys shown."""

    rows: list[Row]
    skipped: list[Skipped]
    diff: list[str]  # config keys that differ between the rows (--only-changed)
    baseline: str | None = None  # what the rows were compared with; None: no test

    @property
    def with_test(self) -> bool:
        return self.baseline is not None

    @property
    def summaries(self) -> list[Summary]:
        return [row.summary for row in self.rows]


def compare(
    paths: list[Path],
    baseline: str | None = None,
    sort: str | None = None,
    reverse: bool = False,
    only_changed: bool = False,
    metric: str = "test_accuracy",
    margin: float | None = None,
    seeds: list[int] | None = None,
    test: TestKind | None = None,
) -> Comparison:
    """Read runs under ``paths``, pool them by variant and compute the statistics.

    Without ``baseline`` it is picked as :func:`default_baseline` says, the same way for ``run`` and
    ``compare``, so the same runs give the same table. Without ``margin`` (in the metric's column unit), the
    one the compared studies set (``analysis.margin``) is used when they agree on one, else the metric's default.
    Verdicts share the error budget the studies recorded (``analysis.level``: lower when seeds were added in
    rounds) when they agree on one, else :data:`ALPHA`; ``test`` (auto, welch or paired) likewise defaults to the
    studies' ``analysis.test``, else auto (analysis.verdicts). Rows that rounds of seeds decided at an earlier
    look (the folder's rounds.json) keep that look's test and verdict.

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
    recorded = [r.folder.judging for r in {r.experiment_dir: r for r in runs}.values()]  # read once per folder
    summaries, dropped = summarize(runs)
    if baseline is None:
        baseline = default_baseline(summaries)
        if any(r.searched for r in recorded) and baseline is not None and baseline.startswith("trial-"):
            baseline = None  # trials of a search are not compared with its first trial; name a baseline to test

    def agreed(values: set, default):
        return values.pop() if len(values) == 1 and None not in values else default

    margin = margin if margin is not None else agreed({r.margin for r in recorded}, None)
    level = agreed({r.level for r in recorded}, ALPHA)
    test = TestKind(test or agreed({r.test for r in recorded}, TEST))
    folders = {r.experiment_dir: r.folder for r in runs}
    decided = next(iter(folders.values())).decided if len(folders) == 1 else {}
    try:
        per_look = agreed({r.rounds for r in recorded}, False)
        rows = judge(summaries, baseline, metric, margin, level, test, decided=decided, per_look=per_look)
    except KeyError:
        labels = [s.label for s in summaries]
        hits = [lbl for lbl in labels if lbl.split(" @ ")[0] == baseline]
        why = f"matches {len(hits)} variants; name one by its full label" if hits else "no such variant"
        raise RegbenchError(
            f"--baseline {baseline}: {why}; expected one of: {'; '.join(hits or labels)}", exit_code=2
        ) from None
    if sort is not None:
        rows = sorted_rows(rows, sort, reverse)
    diff = changed_keys([r.summary.config for r in rows]) if only_changed else []
    return Comparison(rows, skipped + dropped, diff, baseline=baseline)


def sorted_rows(rows: list[Row], sort: str, reverse: bool = False) -> list[Row]:
    """``rows`` by a column of :data:`SORT_KEYS`; rows without a value stay at the bottom either way.

    Raises:
        RegbenchError: (exit 2) for another column.
    """
    if sort not in SORT_KEYS:
        raise RegbenchError(f"--sort {sort}: unknown column; expected one of: {', '.join(SORT_KEYS)}", exit_code=2)

    def key(row: Row) -> tuple:
        if sort == "variant":
            value: Any = row.summary.label
        elif sort == "n":
            value = row.summary.n
        elif sort == "delta":
            value = row.delta
        elif sort == "p_value":
            value = None if row.test is None else row.test.p_value
        else:
            value = row.summary.stats[sort].mean
        missing = value is None or (isinstance(value, float) and math.isnan(value))
        return (missing, value if not missing else 0)

    ordered = sorted(rows, key=key, reverse=reverse)
    return [r for r in ordered if not key(r)[0]] + [r for r in ordered if key(r)[0]]
