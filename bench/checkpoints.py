"""What per-epoch checkpoints (output.checkpoint, on by default) cost: each study run with checkpoints and
without (`--set output.checkpoint=false`), alternating, each a fresh `regbench run` process after one untimed
run that warms the compile cache; then once with `output.keep_checkpoint=true` to report the checkpoint's size.
Prints one Markdown table: median wall time with and without, their ratio, the size of one checkpoint.

    python bench/checkpoints.py                         # the seed study and bench/sweep.yaml, 2 repetitions
    python bench/checkpoints.py --reps 3 --studies bench/sweep.yaml
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUDIES = [ROOT / "configs" / "dropout.yaml", ROOT / "bench" / "sweep.yaml"]


def timed(study: Path, out: Path, *sets: str) -> float:
    command = [sys.executable, "-m", "regbench", "run", str(study), "--out", str(out)]
    for s in sets:
        command += ["--set", s]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--studies", nargs="+", type=Path, default=STUDIES)
    args = parser.parse_args()
    rows = ["| study | with checkpoints s | without s | with / without | one checkpoint MB |"]
    rows.append("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        for study in args.studies:
            timed(study, out / "warm")
            on, off = [], []
            for rep in range(args.reps):
                on.append(timed(study, out / f"on{rep}"))
                off.append(timed(study, out / f"off{rep}", "output.checkpoint=false"))
                print(f"{study.name} rep {rep + 1}: with {on[-1]:.1f} s, without {off[-1]:.1f} s", flush=True)
            timed(study, out / "kept", "output.keep_checkpoint=true")
            sizes = [p.stat().st_size for p in (out / "kept").glob("*/.checkpoints/*.npz")]
            with_s, without_s = statistics.median(on), statistics.median(off)
            size = f"{max(sizes) / 1e6:.1f}" if sizes else "-"
            rows.append(f"| {study.name} | {with_s:.1f} | {without_s:.1f} | {with_s / without_s:.3f} | {size} |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
