"""Datasets as numpy arrays: where they come from, and how the training set is split and perturbed.

Sources are tried in order: a data directory (``data.dir`` in the config, ``--data-dir``, or the
``REGBENCH_DATA_DIR`` environment variable), Debian's dataset folder ``/usr/share/datasets/<name>``, then
Keras' own download. A data directory holds ``<name>.npz`` with Keras' keys (``x_train``, ``y_train``,
``x_test``, ``y_test``), or the dataset's own files: the four IDX files of MNIST and Fashion-MNIST (gzipped
or not), or CIFAR's Python batches as Keras downloads and unpacks them (``cifar-10-batches-py/``,
``cifar-100-python/``), either directly or in a ``<name>/`` folder. Image shape and number of classes come
from the data.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from regbench.errors import DataError

DEBIAN_DIR = Path("/usr/share/datasets")
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
KEYS = tuple(IDX_FILES)
DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")
# CIFAR's Python batches, as keras.datasets downloads and unpacks them: folder, training files, test files,
# label key. Each file is a pickled dict with b"data" (N x 3072 uint8, channels first) and the labels.
CIFAR_BATCHES = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels"),
}


@dataclass
class Splits:
    """Float32 images in [0, 1] (n, height, width[, channels]) and int labels, ready to train on."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str = ""
    num_classes: int = 10  # from the data: the largest label + 1


def _names(dataset: str) -> list[str]:
    """File/folder names a dataset may go by: fashion_mnist, fashion-mnist."""
    return list(dict.fromkeys([dataset, dataset.replace("_", "-")]))


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a uint8 array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise DataError(f"{path}: truncated IDX file (expected {int(np.prod(shape))} values, got {array.size})")
    return array.reshape(shape)


def read_cifar(folder: Path, dataset: str) -> dict[str, np.ndarray]:
    """CIFAR-10 or CIFAR-100 (fine labels) from its unpacked Python batches, as Keras reads them: images
    channels last, uint8 (N, 32, 32, 3). The batches are pickles: read only files from a source you trust."""
    import pickle

    _, train_files, test_files, label_key = CIFAR_BATCHES[dataset]

    def batches(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for name in names:
            try:
                with open(folder / name, "rb") as fh:
                    batch = pickle.load(fh, encoding="bytes")
                data = np.asarray(batch[b"data"], dtype=np.uint8)
                xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
                ys.append(np.asarray(batch[label_key], dtype=np.int64))
            except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError) as exc:
                raise DataError(f"{folder / name}: not a {dataset} batch in Keras' format ({exc!r})") from None
        return np.concatenate(xs), np.concatenate(ys)

    x_train, y_train = batches(train_files)
    x_test, y_test = batches(test_files)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _from_dir(folder: Path, dataset: str) -> dict[str, np.ndarray] | None:
    """Arrays from a folder, or None when it holds none of the dataset's files (npz, IDX, CIFAR batches)."""
    candidates = [folder] + [folder / n for n in _names(dataset)]
    for where in candidates:
        if dataset in CIFAR_BATCHES:
            batches = where / CIFAR_BATCHES[dataset][0]
            if batches.is_dir():
                return read_cifar(batches, dataset)
        for name in _names(dataset):
            npz = where / f"{name}.npz"
            if npz.is_file():
                try:
                    with np.load(npz) as f:
                        missing = [k for k in KEYS if k not in f.files]
                        if missing:
                            raise DataError(f"{npz}: missing arrays {missing}; expected Keras' keys {list(KEYS)}")
                        return {k: f[k] for k in KEYS}
                except (OSError, ValueError) as exc:
                    raise DataError(f"{npz}: cannot read ({exc})") from None
        found = {}
        for key, stem in IDX_FILES.items():
            for suffix in ("", ".gz"):
                if (where / (stem + suffix)).is_file():
                    found[key] = where / (stem + suffix)
                    break
        if len(found) == len(IDX_FILES):
            return {k: read_idx(p) for k, p in found.items()}
    return None


def _from_keras(dataset: str) -> dict[str, np.ndarray]:
    import keras

    module = getattr(keras.datasets, dataset)
    (x_train, y_train), (x_test, y_test) = module.load_data()
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def load_arrays(dataset: str, data_dir: str | Path | None = None) -> tuple[dict[str, np.ndarray], str]:
    """Load a dataset's raw uint8 arrays and say where they came from.

    Args:
        dataset: ``mnist``, ``fashion_mnist``, ``cifar10`` or ``cifar100``.
        data_dir: A data directory to look in first. Defaults to ``REGBENCH_DATA_DIR`` when unset.

    Raises:
        DataError: listing every place tried and how to supply the data.
    """
    tried: list[str] = []
    dirs: list[tuple[str, Path]] = []
    if data_dir:
        dirs.append(("data directory", Path(data_dir).expanduser()))
    env = os.environ.get("REGBENCH_DATA_DIR")
    if env and not data_dir:
        dirs.append(("REGBENCH_DATA_DIR", Path(env).expanduser()))
    for name in _names(dataset):
        dirs.append(("Debian dataset folder", DEBIAN_DIR / name))
    for label, folder in dirs:
        arrays = _from_dir(folder, dataset)
        if arrays is not None:
            return arrays, str(folder)
        tried.append(f"{label} {folder}: no {dataset}.npz or {dataset} files there")
    try:
        return _from_keras(dataset), "keras.datasets download"
    except Exception as exc:  # noqa: BLE001 - any download failure is reported with the others
        tried.append(f"Keras download: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    debian = "apt-get install dataset-fashion-mnist" if dataset == "fashion_mnist" else None
    own = (
        f"CIFAR's unpacked Python batches ({CIFAR_BATCHES[dataset][0]}/)"
        if dataset in CIFAR_BATCHES
        else "the four IDX files"
    )
    hints = [
        f"Put {dataset}.npz (Keras' keys x_train, y_train, x_test, y_test) or {own} in a folder and "
        "pass it with --data-dir DIR, data.dir in the config, or REGBENCH_DATA_DIR=DIR.",
    ]
    if debian:
        hints.append(f"Or install Debian's package: {debian}")
    raise DataError([f"cannot load dataset {dataset!r}. Tried:"] + [f"  - {t}" for t in tried] + hints)


def prepare(
    arrays: dict[str, np.ndarray],
    *,
    validation_split: float = 0.1,
    train_subset: int | None = None,
    label_noise: float = 0.0,
    seed: int = 0,
    source: str = "",
) -> Splits:
    """Scale images to [0, 1] and split off validation data, with an optional subset and label noise.

    The order is: shuffle the training set with ``seed``; keep the first ``train_subset`` examples; hold out
    the last ``validation_split`` of those for validation; replace ``label_noise`` of the remaining training
    labels by a random *different* class. Validation and test labels are never noised. The test set is
    untouched.
    """
    x, y = arrays["x_train"], np.asarray(arrays["y_train"]).astype(np.int32).reshape(-1)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    if train_subset is not None:
        if train_subset > len(x):
            raise DataError(
                f"data.train_subset: expected at most {len(x)} (the training set's size), got {train_subset}"
            )
        order = order[:train_subset]
    n_val = int(round(len(order) * validation_split))
    if n_val < 1 or n_val >= len(order):
        raise DataError(
            f"data.validation_split: {validation_split} of {len(order)} examples leaves "
            f"{n_val} for validation and {len(order) - n_val} for training; expected at least one of each"
        )
    train_idx, val_idx = order[:-n_val], order[-n_val:]
    y_train = y[train_idx].copy()
    y_test = np.asarray(arrays["y_test"]).astype(np.int32).reshape(-1)
    classes = int(max(y.max(), y_test.max())) + 1
    if label_noise > 0:
        flip = rng.random(len(y_train)) < label_noise
        shift = rng.integers(1, classes, size=int(flip.sum()))
        y_train[flip] = (y_train[flip] + shift) % classes

    def scale(images: np.ndarray) -> np.ndarray:
        return np.asarray(images, dtype=np.float32) / np.float32(255.0)

    return Splits(
        x_train=scale(x[train_idx]),
        y_train=y_train,
        x_val=scale(x[val_idx]),
        y_val=y[val_idx].copy(),
        x_test=scale(arrays["x_test"]),
        y_test=y_test,
        source=source,
        num_classes=classes,
    )


_SPLITS: dict[tuple, Splits] = {}


def data_key(config, data_dir: str | None) -> tuple:
    """Runs with equal keys train on the same data (``config``: a VariantConfig)."""
    d = config.data
    return (d.dataset, d.dir or data_dir, d.validation_split, d.train_subset, d.label_noise, d.seed)


def splits_for(config, data_dir: str | None) -> Splits:
    """A variant's data, loaded and prepared once per process and shared by every run of it."""
    d = config.data
    key = data_key(config, data_dir)
    if key not in _SPLITS:
        arrays, source = load_arrays(d.dataset, d.dir or data_dir)
        _SPLITS[key] = prepare(
            arrays,
            validation_split=d.validation_split,
            train_subset=d.train_subset,
            label_noise=d.label_noise,
            seed=d.seed,
            source=source,
        )
    return _SPLITS[key]


def forget_splits() -> None:
    """Drop the cached data (a driver whose workers load their own copy)."""
    _SPLITS.clear()
