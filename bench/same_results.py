"""Do two sets of experiment folders hold the same results? For checking that a change which should not move a
number (a refactor, a faster path) did not: every run's metrics.json and history.csv must be byte-identical,
apart from what differs between any two sessions (timings, a resume's starting epoch).

    python bench/same_results.py [--figures] BEFORE AFTER

BEFORE and AFTER are folders holding experiment folders (e.g. the --out of `regbench run` before and after the
change, or of bench/unchanged.py). Runs are matched by the folders between BEFORE and the experiment folder,
study name (the experiment folder's name less its timestamp), variant and seed. ``--figures`` also compares
every experiment folder's PNG figures byte for byte. Exit 0 when every run (and figure) matches and both sides
hold the same runs, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

# Wall-clock measurements, and whether a run was continued from a checkpoint: they differ between any two
# sessions, so they are left out of the comparison.
TIMINGS = (("train_time_s",), ("fused", "wall_time_s"), ("resumed_from_epoch",))


def _study(experiment: Path, parent: Path) -> str:
    """An experiment folder's place under ``parent`` less its timestamp: ``grid/grid``, ``dropout``."""
    where = experiment.parent.relative_to(parent).parts
    return "/".join((*where, re.sub(r"-\d{8}-\d{6}(-\d+)?$", "", experiment.name)))


def runs(parent: Path) -> dict[tuple[str, str, str], Path]:
    """Every run folder under ``parent`` by (study, variant, seed)."""
    found = {}
    for metrics in sorted(parent.rglob("metrics.json")):
        run = metrics.parent
        found[(_study(run.parent.parent, parent), run.parent.name, run.name)] = run
    return found


def figures(parent: Path) -> dict[tuple[str, str], Path]:
    """Every experiment folder's PNG figure under ``parent`` by (study, file name)."""
    return {(_study(png.parent, parent), png.name): png for png in sorted(parent.rglob("*.png"))}


def without_timings(record: dict) -> dict:
    for path in TIMINGS:
        node = record
        for key in path[:-1]:
            node = node.get(key) or {}
        node.pop(path[-1], None)
    return record


def differences(before: Path, after: Path) -> list[str]:
    problems = []
    for name in ("metrics.json", "history.csv"):
        a, b = before / name, after / name
        if not a.is_file() or not b.is_file():
            problems.append(f"{name}: missing on one side")
            continue
        if name == "metrics.json":
            left, right = (without_timings(json.loads(p.read_text())) for p in (a, b))
            if left != right:
                keys = sorted(k for k in {*left, *right} if left.get(k) != right.get(k))
                problems.append(f"metrics.json differs in {', '.join(keys)}")
        elif a.read_bytes() != b.read_bytes():
            problems.append("history.csv differs")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--figures", action="store_true", help="compare the PNG figures too")
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args()
    left, right = runs(args.before), runs(args.after)
    failed = 0
    for key in sorted(left.keys() | right.keys()):
        label = "/".join(key)
        if key not in left or key not in right:
            print(f"{label}: only in {'after' if key in right else 'before'}")
            failed += 1
            continue
        problems = differences(left[key], right[key])
        failed += bool(problems)
        print(f"{label}: {'; '.join(problems) if problems else 'identical'}")
    print(f"{len(left.keys() & right.keys()) - failed} of {len(left.keys() | right.keys())} runs identical")
    if args.figures:
        first, second = figures(args.before), figures(args.after)
        other = sorted(
            k
            for k in first.keys() | second.keys()
            if k not in first or k not in second or first[k].read_bytes() != second[k].read_bytes()
        )
        for key in other:
            print(f"{'/'.join(key)}: {'differs' if key in first and key in second else 'only on one side'}")
        every = first.keys() | second.keys()
        print(f"{len(every) - len(other)} of {len(every)} figures identical")
        failed += len(other)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
