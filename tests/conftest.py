"""Shared fixtures: tiny synthetic MNIST-shaped datasets, so unit and CLI tests train in seconds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Fix this process's Keras backend now (TensorFlow unless KERAS_BACKEND says otherwise): `regbench run` picks one
# (JAX for Dense stacks) when Keras is not loaded yet, which must not happen to the tests that run it in-process.
import keras  # noqa: E402, F401

ROOT = Path(__file__).resolve().parent.parent


def run_in_backend(script: str, backend: str, **env: str | None) -> str:
    """Run ``script`` (``python -c``) in a new process with KERAS_BACKEND=backend (Keras fixes its backend per
    process) and tests/ importable; ``env`` sets variables, None removes one. Asserts exit 0; returns the last
    line of its output."""
    import subprocess
    import sys

    full = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(ROOT / "tests")}
    for key, value in env.items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    proc = subprocess.run([sys.executable, "-c", script], env=full, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def kill_when(process, ready, timeout: float = 300, every: float = 0.05) -> None:
    """SIGKILL ``process`` as soon as ``ready()`` is true (polled every ``every`` s), or when ``timeout`` s have
    passed or it has ended by itself; then wait for it."""
    import signal
    import time

    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None and not ready():
        time.sleep(every)
    process.send_signal(signal.SIGKILL)
    process.wait()


def synthetic_arrays(n_train: int = 256, n_test: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    """28x28 uint8 images whose class is a bright 7x7 block at one of ten places, plus noise: learnable."""
    rng = np.random.default_rng(seed)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 10, size=n).astype(np.uint8)
        x = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(y):
            r, c = divmod(int(label), 5)
            x[i, 3 + r * 12 : 10 + r * 12, 1 + c * 5 : 6 + c * 5] = 250
        return x, y

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory holding a synthetic mnist.npz, exported as REGBENCH_DATA_DIR."""
    folder = tmp_path / "data"
    folder.mkdir()
    np.savez_compressed(folder / "mnist.npz", **synthetic_arrays())
    monkeypatch.setenv("REGBENCH_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def tiny_study(tmp_path: Path) -> Path:
    """A two-variant, two-epoch study on the synthetic data."""
    path = tmp_path / "tiny.yaml"
    path.write_text(
        """\
name: tiny
model:
  hidden_units: [16, 8]
train:
  epochs: 2
  batch_size: 32
variants:
  baseline: {}
  dropout:
    regularization:
      dropout: [0.3, 0.0]
"""
    )
    return path


def write_cifar(folder: Path, dataset: str, n_train: int = 20, n_test: int = 10, seed: int = 0) -> dict:
    """Small arrays in Keras' CIFAR format: pickled dicts of channels-first rows, as keras.datasets unpacks them."""
    import pickle

    from regbench.data.datasets import CIFAR_BATCHES

    name, train_files, test_files, label_key = CIFAR_BATCHES[dataset]
    classes = 10 if dataset == "cifar10" else 100
    rng = np.random.default_rng(seed)
    batches = folder / name
    batches.mkdir(parents=True)
    images = {"train": [], "test": []}
    for part, files, n in (("train", train_files, n_train), ("test", test_files, n_test)):
        for file in files:
            x = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
            y = rng.integers(0, classes, size=n)
            y[0] = classes - 1  # every class count check sees the largest label
            record = {b"data": x.transpose(0, 3, 1, 2).reshape(n, 3072), label_key: list(map(int, y))}
            with open(batches / file, "wb") as fh:
                pickle.dump(record, fh)
            images[part].append((x, y))
    return images


def tree_state(root: Path, *inside: Path) -> dict[str, tuple]:
    """Every path under ``root`` (links not followed) with its kind and, for a file, its size and sha256; except
    those under ``inside`` (the folder a command may write). Equal before and after: nothing else changed."""
    import hashlib
    import stat

    state = {}
    for path in sorted(root.rglob("*")):
        if any(path == p or p in path.parents for p in inside):
            continue
        info = path.lstat()
        if stat.S_ISREG(info.st_mode):
            state[str(path)] = ("file", info.st_size, hashlib.sha256(path.read_bytes()).hexdigest())
        elif stat.S_ISLNK(info.st_mode):
            state[str(path)] = ("link", os.readlink(path))
        else:
            state[str(path)] = ("dir" if stat.S_ISDIR(info.st_mode) else "other",)
    return state
