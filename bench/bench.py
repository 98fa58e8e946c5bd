"""Time regbench against the plain-Keras script a user would write, alternating, in one run: the seed study
(`--study seed`, default), configs/cnn.yaml's baseline CNN (`--study cnn`) or a 48-run sweep (`--study sweep`).

For each repetition the baseline script (bench/baseline.py) runs first, then every regbench mode, each as a
fresh process, so every ratio compares runs made minutes apart on the same machine. Prints one table
(Markdown) with: wall time (median over repetitions), the ratio to the baseline of the same repetition
(median), each variant's test accuracy (mean over seeds; for the sweep, over all runs) and its difference from
the baseline script's, the peak resident memory of the process, and what each mode ran as (backend, how many
runs were fused). Mode `default` is `regbench run STUDY` with no flags and no KERAS_BACKEND: what a user gets.

Compiling: on JAX regbench keeps compiled programs on disk (REGBENCH_COMPILE_CACHE). Every mode here starts
from an empty cache of its own, as a first run of the study on a machine does; MODE+warm (e.g. `default+warm`)
runs the same command once untimed first, as every later run of the same shapes finds it.

    python bench/bench.py                       # all modes this machine can run, 2 repetitions, seeds 0,1,2
    python bench/bench.py --reps 1 --modes default,tf-alone,jax-fuse
    python bench/bench.py --study sweep --reps 1
    python bench/bench.py --study sweep --reps 1 --modes default,default+warm
    KERAS_BACKEND=jax python bench/bench.py     # e.g. on a GPU machine without TensorFlow
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# study: (regbench's study file, the plain script's --model, the variants whose accuracy gets a column (None: one
# column, the mean over every run), default modes)
STUDIES = {
    "seed": (ROOT / "configs" / "dropout.yaml", "mlp", ("baseline", "dropout"), None),
    "cnn": (ROOT / "bench" / "cnn_baseline.yaml", "cnn", ("baseline",), "tf-alone,tf-jobs2"),
    "sweep": (ROOT / "bench" / "sweep.yaml", "sweep", None, "default,tf-alone,tf-fuse"),
}
MODES = {
    # name: (KERAS_BACKEND, or None to leave regbench's choice; extra regbench arguments)
    "default": (None, []),  # `regbench run STUDY`, no flags: regbench picks the backend, fuses what it can
    "tf-alone": ("tensorflow", ["--no-fuse"]),
    "tf-jobs2": ("tensorflow", ["--no-fuse", "--jobs", "2"]),
    "tf-fuse": ("tensorflow", ["--fuse"]),
    "jax-alone": ("jax", ["--no-fuse"]),
    "jax-jobs2": ("jax", ["--no-fuse", "--jobs", "2"]),
    "jax-fuse": ("jax", ["--fuse"]),
}


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Run a command; return (wall seconds, peak RSS in MB of the largest process, exit code)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.stderr.write(proc.stderr.read().decode(errors="replace")[-3000:])
    return wall, usage.ru_maxrss / 1024, code


ALL = "all runs"


def mean_accuracy(runs: list[dict]) -> dict[str, float]:
    """Test accuracy, mean over seeds, per variant, and over every run (key ALL)."""
    accs: dict[str, list[float]] = {ALL: []}
    for r in runs:
        accs.setdefault(r["variant"], []).append(r["test_accuracy"])
        accs[ALL].append(r["test_accuracy"])
    return {v: statistics.fmean(a) for v, a in accs.items()}


def regbench_runs(out: Path) -> tuple[list[dict], str, bool]:
    """Every run's metrics in the experiment folder under ``out``, the backend and fusion it ran with, and
    whether it used the compile cache (JAX)."""
    [exp] = list(out.iterdir())
    runs = [json.loads(path.read_text()) for path in exp.glob("*/seed-*/metrics.json")]
    env = json.loads((exp / "environment.json").read_text())
    fused = sum("fused" in r for r in runs)
    return runs, f"{env['backend']}, {fused}/{len(runs)} fused", bool(env.get("compile_cache"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--modes", help=f"comma-separated, from: {', '.join(MODES)}; MODE+warm: compile cache warm")
    parser.add_argument("--out", help="also write the table (Markdown) to this file")
    parser.add_argument(
        "--study",
        choices=sorted(STUDIES),
        default="seed",
        help="seed: the seed study (configs/dropout.yaml); cnn: configs/cnn.yaml's baseline CNN "
        "(bench/cnn_baseline.yaml; default modes tf-alone,tf-jobs2: JAX's CPU convolutions are far slower); "
        "sweep: bench/sweep.yaml's 48 runs (4 dropout x 4 L2 x 3 seeds, 3 epochs, 6,000 examples) against the "
        "plain nested loop",
    )
    args = parser.parse_args()
    study, model, variants, default_modes = STUDIES[args.study]
    have = {b: importlib.util.find_spec(m) is not None for b, m in (("tensorflow", "tensorflow"), ("jax", "jax"))}
    chosen = args.modes or default_modes
    modes = chosen.split(",") if chosen else [m for m, (b, _) in MODES.items() if b is None or have[b]]
    unknown = [m for m in modes if m.removesuffix("+warm") not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(unknown)}: expected {', '.join(MODES)}, each optionally +warm")
    base_backend = os.environ.get("KERAS_BACKEND") or ("tensorflow" if have["tensorflow"] else "jax")
    data_dir = os.environ.get("REGBENCH_DATA_DIR", str((ROOT.parent / "shared" / "data").resolve()))
    env = {**os.environ, "REGBENCH_DATA_DIR": data_dir, "TF_CPP_MIN_LOG_LEVEL": "3"}
    print(
        f"# bench: {args.study} study ({study.name}), seeds {args.seeds}, {args.reps} repetition(s), "
        f"baseline backend {base_backend}, modes {', '.join(modes)}",
        flush=True,
    )

    rows: dict[str, dict[str, list]] = {
        m: {"wall": [], "ratio": [], "rss": [], "acc": [], "path": []} for m in ["baseline", *modes]
    }
    for rep in range(1, args.reps + 1):
        with tempfile.TemporaryDirectory() as tmp:
            result = Path(tmp) / "baseline.json"
            wall, rss, code = timed(
                [sys.executable, "bench/baseline.py", "--model", model, "--seeds", args.seeds, "--json", str(result)],
                {**env, "KERAS_BACKEND": base_backend},
            )
            if code != 0:
                raise SystemExit(f"baseline script failed (exit {code})")
            base_acc = mean_accuracy(json.loads(result.read_text())["runs"])
            for key, value in (("wall", wall), ("ratio", 1.0), ("rss", rss), ("acc", base_acc)):
                rows["baseline"][key].append(value)
            print(f"rep {rep}: baseline script {wall:.1f} s, {rss:.0f} MB", flush=True)
            for mode in modes:
                backend, extra = MODES[mode.removesuffix("+warm")]
                out = Path(tmp) / mode
                cmd = [sys.executable, "-m", "regbench", "run", str(study), "--seeds", args.seeds, *extra, "--out"]
                mode_env = {k: v for k, v in env.items() if k not in ("KERAS_BACKEND", "JAX_COMPILATION_CACHE_DIR")}
                mode_env["REGBENCH_COMPILE_CACHE"] = str(Path(tmp) / f"compile-cache-{mode}")  # empty: cold
                if backend:
                    mode_env["KERAS_BACKEND"] = backend
                if mode.endswith("+warm"):  # fill the cache with the same run, untimed
                    timed([*cmd, str(Path(tmp) / f"{mode}-untimed")], mode_env)
                wall_m, rss_m, code = timed([*cmd, str(out)], mode_env)
                if code != 0:
                    print(f"rep {rep}: {mode} failed (exit {code})", flush=True)
                    continue
                runs, path, cached = regbench_runs(out)
                if cached:
                    path += ", compile cache " + ("warm" if mode.endswith("+warm") else "cold")
                for key, value in (
                    ("wall", wall_m),
                    ("ratio", wall_m / wall),
                    ("rss", rss_m),
                    ("acc", mean_accuracy(runs)),
                    ("path", path),
                ):
                    rows[mode][key].append(value)
                print(f"rep {rep}: {mode} {wall_m:.1f} s = {wall_m / wall:.3f} x baseline, {rss_m:.0f} MB", flush=True)

    variants = variants or (ALL,)
    base = {v: statistics.fmean(a[v] for a in rows["baseline"]["acc"]) for v in variants}
    cpu = platform.processor() or platform.machine()
    lines = [
        f"{args.study.capitalize()} study, seeds {args.seeds}, median of {args.reps} repetition(s); {cpu}, "
        f"{os.cpu_count()} CPU(s). Accuracy: test set, mean over seeds; Δ against the baseline script.",
        "",
        "| mode | ran as | wall s | × baseline | "
        + " | ".join(f"{v} acc % (Δ pp)" for v in variants)
        + " | peak RSS MB |",
        "|---|---|---:|---:|" + "---:|" * len(variants) + "---:|",
    ]
    for mode, r in rows.items():
        if not r["wall"]:
            continue
        acc = {v: statistics.fmean(a[v] for a in r["acc"]) for v in variants}
        cells = [f"{acc[v] * 100:.2f} ({(acc[v] - base[v]) * 100:+.2f})" for v in variants]
        name = "plain Keras script" if mode == "baseline" else f"regbench {mode}"
        path = base_backend if mode == "baseline" else r["path"][-1]
        lines.append(
            f"| {name} | {path} | {statistics.median(r['wall']):.1f} | {statistics.median(r['ratio']):.3f} | "
            + " | ".join(cells)
            + f" | {max(r['rss']):.0f} |"
        )
    table = "\n".join(lines)
    print("\n" + table)
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
