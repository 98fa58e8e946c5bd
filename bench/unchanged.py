"""The studies a change that must not move a number is checked on: run them all into one folder, once with the
code before the change and once after, then compare the two folders with bench/same_results.py.

    python bench/unchanged.py OUT [--source DIR] [--only NAME,...]
    python bench/same_results.py --figures BEFORE AFTER

``--source DIR`` runs the regbench found in DIR (a worktree of the commit before the change, e.g.
``git worktree add ../base HEAD~3``) with this environment's packages. Each study goes to ``OUT/<name>/``; the
``killed`` study is stopped with SIGKILL once a checkpoint of epoch 3 or later exists and then resumed, and
``same_results.py OUT/whole OUT/killed`` checks that it ended as the uninterrupted ``whole`` did.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUBSET_6000 = ["--set", "data.train_subset=6000"]
# name: (KERAS_BACKEND, regbench run arguments)
STUDIES: dict[str, tuple[str | None, list[str]]] = {
    "dropout": (None, ["configs/dropout.yaml"]),
    "grid": (None, ["configs/grid.yaml", "--set", "train.epochs=2"]),
    "cnn": (None, ["configs/cnn.yaml", "--set", "data.train_subset=2000", "--set", "train.epochs=2", "--seeds", "0"]),
    "smoke": (None, ["configs/smoke.yaml", "--no-fuse", "--backend", "tensorflow"]),
    "es-jax-fused": (
        "jax",
        ["configs/early_stopping.yaml", *SUBSET_6000, "--set", "train.epochs=15", "--seeds", "0,1", "--fuse"],
    ),
    "es-tf-alone": (
        "tensorflow",
        ["configs/early_stopping.yaml", *SUBSET_6000, "--set", "train.epochs=15", "--seeds", "0,1", "--no-fuse"],
    ),
    "search": (None, [str(ROOT / "bench" / "search_small.yaml")]),
    "whole": (None, ["configs/dropout.yaml", *SUBSET_6000, "--set", "train.epochs=8"]),
    "killed": (None, ["configs/dropout.yaml", *SUBSET_6000, "--set", "train.epochs=8"]),
}


def epochs_done(path: Path) -> int:
    """The epoch a checkpoint file holds, or 0 when it cannot be read (yet)."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            return int(json.loads(data["meta"].tobytes())["epochs_done"])
    except Exception:  # noqa: BLE001 - a file being replaced
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--source", type=Path, help="the regbench source tree to run (default: this one)")
    parser.add_argument("--only", help="comma-separated study names (default: all)")
    args = parser.parse_args()
    source = (args.source or ROOT).resolve()
    env = {**os.environ, "PYTHONPATH": str(source), "TF_CPP_MIN_LOG_LEVEL": "3"}
    names = args.only.split(",") if args.only else list(STUDIES)
    for name in names:
        backend, argv = STUDIES[name]
        run_env = {**env, **({"KERAS_BACKEND": backend} if backend else {})}
        if not backend:
            run_env.pop("KERAS_BACKEND", None)
        out = args.out.resolve() / name
        command = [sys.executable, "-m", "regbench", "run", *argv, "--out", str(out)]
        start = time.perf_counter()
        if name == "killed":
            driver = subprocess.Popen(command, env=run_env, cwd=source, stdout=subprocess.DEVNULL)
            while driver.poll() is None:
                found = list(out.glob("*/.checkpoints/*.npz"))
                if found and epochs_done(found[0]) >= 3:
                    driver.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.02)
            driver.wait()
            (exp,) = out.iterdir()
            command = [sys.executable, "-m", "regbench", "run", *argv, "--resume", str(exp)]
        done = subprocess.run(command, env=run_env, cwd=source, capture_output=True, text=True)
        print(f"{name}: exit {done.returncode} in {time.perf_counter() - start:.0f} s", flush=True)
        if done.returncode != 0:
            print(done.stdout[-2000:], done.stderr[-2000:])
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
