"""How fast `regbench compare` answers on many runs, measured as whole processes (start-up included).

Writes a study of 120 finished runs (24 variants x 5 seeds, as `regbench run` writes them, with made-up
numbers: no training), then times `regbench compare DIR --baseline baseline --format csv` several times, beside
`regbench --help` as the start-up floor measured in the same run. Prints the medians.

    python bench/compare.py --reps 5
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

from regbench.config.schema import VariantConfig  # noqa: E402
from regbench.store.writer import write_run  # noqa: E402


def write_study(exp: Path, variants: int = 24, seeds: int = 5) -> int:
    """``variants`` x ``seeds`` finished runs; returns how many."""
    count = 0
    for v in range(variants):
        name = "baseline" if v == 0 else f"l2={v}e-5"
        cfg = VariantConfig.model_validate({"regularization": {"l2": v * 1e-5}}).model_dump(mode="json")
        for seed in range(seeds):
            acc = 0.97 + 0.001 * ((v * 7 + seed * 3) % 5)
            metrics = {
                "seed": seed,
                "status": "finished",
                "test_accuracy": acc,
                "test_data_loss": 0.1,
                "test_loss": 0.1,
                "train_accuracy": acc + 0.02,
                "train_data_loss": 0.05,
                "generalization_gap": 0.02,
                "monitor": "val_data_loss",
                "best_epoch": 3,
                "epochs_run": 5,
                "stopped_epoch": 5,
                "stopped_early": False,
                "restored_best_weights": False,
                "train_time_s": 1.0,
                "params": 100,
                "weights": {"layers": {}, "near_zero_share": 0.01, "l2_norm": 2.0},
            }
            history = [{"epoch": e, "loss": 1 / e, "val_accuracy": 0.9} for e in range(1, 6)]
            write_run(exp, "many", name, cfg, metrics, history)
            count += 1
    return count


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    regbench = [sys.executable, "-m", "regbench"]
    with tempfile.TemporaryDirectory() as tmp:
        exp = Path(tmp) / "many-20261126-120000"
        n = write_study(exp)
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
