"""Datasets as numpy arrays: where they come from, and how the training set is split and perturbed.

A data directory the user names (``data.dir`` in the config, ``--data-dir``) is used or loading fails.
Without one, sources are tried in order: the ``REGBENCH_DATA_DIR`` environment variable, Debian's dataset
folder ``/usr/share/datasets/<name>``, then Keras' own download. A data directory holds ``<name>.npz`` with
Keras' keys (``x_train``, ``y_train``, ``x_test``, ``y_test``), or the dataset's own files: the four IDX files
of MNIST and Fashion-MNIST (gzipped or not), or CIFAR's Python batches as Keras downloads and unpacks them
(``cifar-10-batches-py/``, ``cifar-100-python/``), either directly or in a ``<name>/`` folder. The arrays are
checked first (shape, pixel range, one class index per image). Each run records where its data came from and
their content hash, so runs trained on different data are never mixed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from regbench.data.sources import content_hash, load_arrays
from regbench.errors import DataError


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
    sha256: str = ""  # of the dataset's arrays as loaded (sources.content_hash), whatever split was made

    @property
    def identity(self) -> dict[str, str]:
        """What a run records of its data (``data`` in metrics.json): where they came from and their hash."""
        return {"source": self.source, "sha256": self.sha256}


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
        _SPLITS[key].sha256 = content_hash(arrays)
    return _SPLITS[key]


def forget_splits() -> None:
    """Drop the cached data (a driver whose workers load their own copy)."""
    _SPLITS.clear()
