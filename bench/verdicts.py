"""The verdicts' error rates and plans, measured by simulation through the code that judges real tables (the
tests' simulate.table): the tables of docs/studies.md. Slower and larger than the tests that hold the same
claims (tests/analysis/test_error_budget.py, test_plan.py, tests/study/test_sequential.py).

    python bench/verdicts.py [--tables 4000] [--studies 1000]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "analysis"), str(ROOT / "tests" / "study")]

from simulate import table, wrong  # noqa: E402
from test_error_budget import CASES  # noqa: E402
from test_plan import calibration  # noqa: E402
from test_sequential import error_rate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=4000)
    parser.add_argument("--studies", type=int, default=1000)
    args = parser.parse_args()

    print("| table (true Δ pp; per-run spread pp; seeds; correlation) | tables | any wrong verdict | ± MC |")
    print("|---|---:|---:|---:|")
    for name, (deltas, spreads, n, correlation, _) in CASES.items():
        rng = np.random.default_rng(sum(map(ord, name)) + 1)
        bad = 0
        for _ in range(args.tables):
            rows = table(deltas, spreads, n, rng, correlation=correlation)[1:]
            bad += any(wrong(r, d) for r, d in zip(rows, deltas, strict=True))
        rate = bad / args.tables
        print(f"| {name} | {args.tables} | {rate:.4f} | {math.sqrt(rate * (1 - rate) / args.tables):.4f} |")

    print("\n| true Δ pp (SD 0.15) | share decided at the planned seeds | median plan |")
    print("|---:|---:|---:|")
    for delta in (0.0, 0.1, 0.2, 0.3):
        share, median = calibration(delta, args.studies // 2, seed=7)
        print(f"| {delta} | {share:.3f} | {median:.0f} |")

    header = "| rounds 3-6-12-24, true Δ of 3 rows | SD pp | any wrong verdict | α at every look | decided | seeds |"
    print("\n" + header)
    print("|---|---:|---:|---:|---:|---:|")
    for deltas in ({"a": 0.0, "b": 0.0, "c": 0.0}, {"a": 0.2, "b": -0.2, "c": 0.5}):
        for spread in (0.15, 0.5):
            rate, decided, seeds = error_rate(deltas, spread, args.studies, level=None)
            naive, _, _ = error_rate(deltas, spread, args.studies, level=0.05)
            shown = ", ".join(f"{d:+g}" for d in deltas.values())
            print(f"| {shown} | {spread} | {rate:.4f} | {naive:.4f} | {decided:.1%} | {seeds:.1f} |")


if __name__ == "__main__":
    main()
