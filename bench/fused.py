"""Eight runs of the seed MLP fused into one model against one run trained alone.

Two fused groups: eight variants with one seed (they share one batch order, so one wide first-layer product
serves all), and one variant with eight seeds (eight batch orders: each branch multiplies its own batch,
which is what a fused group of many seeds costs). The eight variants differ in dropout (0, 0.2, 0.3, 0.5
after the first hidden layer) and L2 (0, 1e-4). All use regbench's own training path on real MNIST (same
data, epochs, batch 32); the fit time of each is measured in this one process, and the ratio to the run
alone is printed. Uses the backend in KERAS_BACKEND.

    python bench/fused.py --epochs 10
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from regbench.backend.quiet_import import import_keras  # noqa: E402
from regbench.config.loading import load_text  # noqa: E402
from regbench.execution.worker import set_thread_env  # noqa: E402

STUDY = """\
name: fused8
train: {{epochs: {epochs}, batch_size: 32}}
sweep:
  regularization.dropout: [[0.0, 0.0], [0.2, 0.0], [0.3, 0.0], [0.5, 0.0]]
  regularization.l2: [0, 1.0e-4]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("REGBENCH_THREADS", "1")))
    parser.add_argument("--data-dir", default=os.environ.get("REGBENCH_DATA_DIR", "../shared/data"))
    args = parser.parse_args()
    set_thread_env(args.threads)
    keras = import_keras()
    from regbench.data.sources import load_arrays
    from regbench.data.splits import prepare
    from regbench.training.driver import train_fused, train_run

    exp = load_text(STUDY.format(epochs=args.epochs))
    cfgs = list(exp.variants.values())
    arrays, _ = load_arrays("mnist", args.data_dir)
    splits = prepare(arrays)
    devices = keras.backend.backend()
    if devices == "jax":
        import jax

        devices += " on " + ", ".join(sorted({d.platform for d in jax.devices()}))

    start = time.perf_counter()
    alone = train_run(cfgs[0], splits, 0).metrics
    alone_s = time.perf_counter() - start
    start = time.perf_counter()
    results = train_fused(cfgs, [0] * len(cfgs), splits)
    fused_s = time.perf_counter() - start
    start = time.perf_counter()
    seeds = train_fused([cfgs[0]] * len(cfgs), list(range(len(cfgs))), splits)
    seeds_s = time.perf_counter() - start

    print(
        f"backend {devices}, threads {args.threads}, {args.epochs} epochs, batch 32; seconds include compiling "
        "and the final evaluation"
    )
    print("| training | runs | fit + evaluate s | × one alone | test acc % |")
    print("|---|---:|---:|---:|---|")
    print(f"| one variant alone | 1 | {alone_s:.1f} | 1.00 | {alone.test_accuracy * 100:.2f} |")
    accs = ", ".join(f"{t.metrics.test_accuracy * 100:.2f}" for t in results)
    print(f"| 8 variants fused, 1 seed (1 batch order) | 8 | {fused_s:.1f} | {fused_s / alone_s:.2f} | {accs} |")
    accs = ", ".join(f"{t.metrics.test_accuracy * 100:.2f}" for t in seeds)
    print(f"| 1 variant fused, 8 seeds (8 batch orders) | 8 | {seeds_s:.1f} | {seeds_s / alone_s:.2f} | {accs} |")


if __name__ == "__main__":
    main()
