"""Where a dataset's arrays come from: a data folder (npz, IDX or CIFAR batches), Debian's dataset folder, or
Keras' download."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np

from regbench.data.datasets import CIFAR_BATCHES, IDX_FILES, KEYS, _names
from regbench.errors import DataError

DEBIAN_DIR = Path("/usr/share/datasets")


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


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR batch holds (dicts, lists, bytes, numbers and numpy arrays): a crafted file
    that names any other callable is refused before anything runs."""

    ALLOWED = {
        (module, name)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    } | {("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR batch never holds; refused")
        return super().find_class(module, name)


def read_cifar(folder: Path, dataset: str) -> dict[str, np.ndarray]:
    """CIFAR-10 or CIFAR-100 (fine labels) from its unpacked Python batches, as Keras reads them: images
    channels last, uint8 (N, 32, 32, 3). The batches are pickles, read by an unpickler that loads arrays and
    nothing else, so a crafted batch cannot run code."""
    _, train_files, test_files, label_key = CIFAR_BATCHES[dataset]

    def batches(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for name in names:
            try:
                with open(folder / name, "rb") as fh:
                    batch = _BatchUnpickler(fh, encoding="bytes").load()
                if not isinstance(batch, dict):
                    raise ValueError(f"expected a dict of arrays, got a {type(batch).__name__}")
                data = np.asarray(batch[b"data"], dtype=np.uint8)
                xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
                ys.append(np.asarray(batch[label_key], dtype=np.int64))
            except (OSError, pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError) as exc:
                raise DataError(f"{folder / name}: not a {dataset} batch in Keras' format: {exc}") from None
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
