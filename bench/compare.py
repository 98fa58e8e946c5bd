"""How fast `regbench compare` answers on many runs, measured as whole processes (start-up included).

Writes a study of 120 finished runs (24 variants x 5 seeds, as `regbench run` writes them, with made-up
numbers: no training), then times `regbench compare DIR --baseline baseline --format csv` several times, beside
`regbench --help` as the start-up floor measured in the same run. Prints the medians.

    python bench/compare.py --reps 5
    python bench/compare.py --variants 6 --seeds 5   # 30 runs
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from regbench.store.samples import sample_run  # noqa: E402


def write_study(exp: Path, variants: int = 24, seeds: int = 5) -> int:
    """``variants`` x ``seeds`` finished runs; returns how many."""
    for v in range(variants):
        name = "baseline" if v == 0 else f"l2={v}e-5"
        for seed in range(seeds):
            acc = 0.97 + 0.001 * ((v * 7 + seed * 3) % 5)
            sample_run(exp, name, seed, acc, config={"regularization": {"l2": v * 1e-5}})
    return variants * seeds


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--variants", type=int, default=24)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    regbench = [sys.executable, "-m", "regbench"]
    with tempfile.TemporaryDirectory() as tmp:
        exp = Path(tmp) / "many-20261126-120000"
        n = write_study(exp, args.variants, args.seeds)
        compare, helps = [], []
        for _ in range(args.reps):
            helps.append(timed([*regbench, "--help"]))
            compare.append(timed([*regbench, "compare", str(exp), "--baseline", "baseline", "--format", "csv"]))
    print(f"| command ({n} runs, median of {args.reps}) | wall s |")
    print("|---|---:|")
    print(f"| regbench --help (start-up floor) | {statistics.median(helps):.2f} |")
    print(f"| regbench compare DIR --baseline baseline | {statistics.median(compare):.2f} |")


if __name__ == "__main__":
    main()
