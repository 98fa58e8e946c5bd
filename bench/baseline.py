"""The seed study as a plain Keras script: the baseline that `make bench` times regbench against.

Same model (784-128-64-10, ReLU, softmax), Adam 1e-3, 10 epochs, batch 32, `fit` with default settings.
Like regbench it holds out a 10 % validation split of the training set (the same examples: a permutation
seeded with 0, the last 10 % held out) and evaluates the test set once, so both do the same work. It is what a
user would write, so it keeps Keras' own `fit(shuffle=True)`, which on TensorFlow repeats one batch order every
epoch when a seed is set (see bench/tf_shuffle_repeats.py); regbench draws a new order each epoch, so accuracies
differ a little between the two on TensorFlow. `--model cnn` is configs/cnn.yaml's baseline CNN instead;
`--model sweep` is bench/sweep.yaml's 48-run grid as the nested loop a user would write (dropout after each
hidden layer, L2 on every kernel, 3 epochs on the same 6,000-example subset).

    python bench/baseline.py --seeds 0,1,2 --json out.json
    python bench/baseline.py --model cnn --seeds 0,1,2
    python bench/baseline.py --model sweep --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np


def load_mnist(data_dir: str):
    with np.load(Path(data_dir) / "mnist.npz") as f:
        return f["x_train"], f["y_train"], f["x_test"], f["y_test"]


SWEEP_SUBSET = 6000
SWEEP_DROPOUT = (0.0, 0.2, 0.35, 0.5)
SWEEP_L2 = (0.0, 1e-5, 1e-4, 1e-3)


def sweep(keras, seeds, epochs, train, val, test) -> list[dict]:
    """bench/sweep.yaml's grid as a plain nested loop: one model per (dropout, L2, seed)."""
    results = []
    for rate in SWEEP_DROPOUT:
        for l2 in SWEEP_L2:
            for seed in seeds:
                keras.utils.set_random_seed(seed)
                reg = keras.regularizers.L2(l2) if l2 else None
                layers = [keras.Input(shape=(28, 28)), keras.layers.Flatten()]
                for units in (128, 64):
                    layers.append(keras.layers.Dense(units, activation="relu", kernel_regularizer=reg))
                    if rate:
                        layers.append(keras.layers.Dropout(rate))
                layers.append(keras.layers.Dense(10, activation="softmax", kernel_regularizer=reg))
                model = keras.Sequential(layers)
                model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
                t = time.perf_counter()
                model.fit(*train, epochs=epochs, batch_size=32, validation_data=val, verbose=0)
                fit_s = time.perf_counter() - t
                _, acc = model.evaluate(*test, verbose=0)
                variant = f"dropout={rate},l2={l2}"
                results.append({"variant": variant, "seed": seed, "test_accuracy": float(acc), "fit_s": fit_s})
                print(f"baseline script: {variant} seed={seed} test_acc={acc:.4f} fit={fit_s:.1f}s", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--epochs", type=int, default=None, help="default: 10 (mlp), 6 (cnn)")
    parser.add_argument("--data-dir", default=os.environ.get("REGBENCH_DATA_DIR", "../shared/data"))
    parser.add_argument("--json", help="write results here")
    parser.add_argument(
        "--model",
        choices=("mlp", "cnn", "sweep"),
        default="mlp",
        help="mlp: the seed study (baseline and dropout, batch 32); cnn: configs/cnn.yaml's baseline CNN (Conv 32 -> "
        "pool -> Conv 64 -> pool -> Dense 128, batch 64, cosine schedule, 6 epochs unless --epochs says otherwise); "
        "sweep: bench/sweep.yaml (dropout x L2, 3 epochs, 6,000 examples)",
    )
    args = parser.parse_args()
    start = time.perf_counter()

    import keras

    x_train, y_train, x_test, y_test = load_mnist(args.data_dir)
    order = np.random.default_rng(0).permutation(len(x_train))
    if args.model == "sweep":
        order = order[:SWEEP_SUBSET]
    n_val = int(round(len(order) * 0.1))
    train_idx, val_idx = order[:-n_val], order[-n_val:]
    x_tr, y_tr = x_train[train_idx] / 255.0, y_train[train_idx]
    x_val, y_val = x_train[val_idx] / 255.0, y_train[val_idx]
    x_te = x_test / 255.0

    cnn = args.model == "cnn"
    epochs = args.epochs if args.epochs is not None else {"cnn": 6, "sweep": 3}.get(args.model, 10)
    results = []
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.model == "sweep":
        results = sweep(keras, seeds, epochs, (x_tr, y_tr), (x_val, y_val), (x_te, y_test))
    for seed in [] if args.model == "sweep" else seeds:
        for variant in ("baseline",) if cnn else ("baseline", "dropout"):
            keras.utils.set_random_seed(seed)
            if cnn:
                layers = [
                    keras.Input(shape=(28, 28, 1)),
                    keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
                    keras.layers.MaxPooling2D(2),
                    keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
                    keras.layers.MaxPooling2D(2),
                    keras.layers.Flatten(),
                    keras.layers.Dense(128, activation="relu"),
                    keras.layers.Dense(10, activation="softmax"),
                ]
            else:
                layers = [
                    keras.Input(shape=(28, 28)),
                    keras.layers.Flatten(),
                    keras.layers.Dense(128, activation="relu"),
                ]
                if variant == "dropout":
                    layers.append(keras.layers.Dropout(0.3))
                layers += [keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10, activation="softmax")]
            model = keras.Sequential(layers)
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            t = time.perf_counter()
            shape = (-1, 28, 28, 1) if cnn else (-1, 28, 28)
            # configs/cnn.yaml lowers Adam's rate along a half cosine, per epoch, to 0 at the end
            cosine = keras.callbacks.LearningRateScheduler(lambda e: 1e-3 * 0.5 * (1 + math.cos(math.pi * e / epochs)))
            model.fit(
                x_tr.reshape(shape),
                y_tr,
                epochs=epochs,
                batch_size=64 if cnn else 32,
                validation_data=(x_val.reshape(shape), y_val),
                callbacks=[cosine] if cnn else [],
                verbose=0,
            )
            fit_s = time.perf_counter() - t
            _, acc = model.evaluate(x_te.reshape(shape), y_test, verbose=0)
            results.append({"variant": variant, "seed": seed, "test_accuracy": float(acc), "fit_s": fit_s})
            print(f"baseline script: {variant} seed={seed} test_acc={acc:.4f} fit={fit_s:.1f}s", flush=True)
    out = {"wall_s": time.perf_counter() - start, "backend": keras.backend.backend(), "runs": results}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
