"""Does pairing by seed pay? Per variant of finished experiment folders: the correlation of its runs with the
baseline's of the same seed, and the 95 % CI half-width of Δ by the paired t-test and by Welch's, in pp.

    python bench/pairing.py outputs/claims-20261130-*/ [--metric test_accuracy] [--baseline baseline]

The CI of a paired test is narrower by about sqrt(1 - correlation) at the same seeds, less the degrees of
freedom it gives up (n - 1 against Welch's ~2n - 2): what docs/studies.md reports for configs/claims.yaml.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from regbench.analysis.stats import paired, welch
from regbench.analysis.summary import METRICS, metric_values, summarize
from regbench.store.reader import find_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--metric", default="test_accuracy", choices=list(METRICS))
    parser.add_argument("--baseline", default="baseline")
    args = parser.parse_args()
    runs, _ = find_runs(args.folders)
    summaries, _ = summarize(runs)
    scale = METRICS[args.metric][3]
    base = next(s for s in summaries if s.variant == args.baseline)
    theirs = dict(zip((r.seed for r in base.runs), metric_values(base, args.metric), strict=True))
    print(f"{args.metric} against {base.label}; CI half-widths in the column's unit (x {scale:g})")
    print("| variant | n | correlation | CI ± paired | CI ± Welch | paired / Welch |")
    print("|---|---:|---:|---:|---:|---:|")
    for g in summaries:
        if g is base:
            continue
        mine = dict(zip((r.seed for r in g.runs), metric_values(g, args.metric), strict=True))
        seeds = sorted(s for s in mine.keys() & theirs.keys() if math.isfinite(mine[s]) and math.isfinite(theirs[s]))
        a, b = [mine[s] for s in seeds], [theirs[s] for s in seeds]
        p, w = paired(a, b), welch(a, b)
        (p_low, p_high), (w_low, w_high) = p.interval(0.95), w.interval(0.95)
        half_p, half_w = (p_high - p_low) / 2 * scale, (w_high - w_low) / 2 * scale
        r = float(np.corrcoef(a, b)[0, 1])
        print(f"| {g.label} | {len(seeds)} | {r:+.2f} | {half_p:.3f} | {half_w:.3f} | {half_p / half_w:.2f} |")


if __name__ == "__main__":
    main()
