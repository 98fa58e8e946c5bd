"""Where a dataset's arrays come from: a data folder (npz, IDX or CIFAR batches), Debian's dataset folder, or
Keras' download."""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import pickle
import zipfile
import zlib
from pathlib import Path

import numpy as np

from regbench.data.datasets import CIFAR_BATCHES, IDX_FILES, KEYS, SHAPES, _names
from regbench.errors import DataError

DEBIAN_DIR = Path("/usr/share/datasets")


DATA_FILE_BYTES = 2**31  # one array of a dataset, uncompressed: CIFAR's 150 MB and MNIST's 47 MB are far below


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a uint8 array; a damaged one is a DataError."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read(DATA_FILE_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: cannot read ({exc}); a download cut short? fetch it again") from None
    if len(data) > DATA_FILE_BYTES:
        raise DataError(f"{path}: more than {DATA_FILE_BYTES:,} bytes, more than any dataset's array")
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX file (its header names {ndim} dimensions)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != math.prod(shape):
        raise DataError(f"{path}: truncated IDX file (expected {math.prod(shape)} values, got {array.size})")
    return array.reshape(shape)


def read_npz(npz: Path) -> dict[str, np.ndarray]:
    """Keras' four arrays from an npz; a damaged one (cut short, not a zip, pickled objects, a header claiming
    more data than the file holds) is a DataError, the last before any array is allocated."""
    try:
        with zipfile.ZipFile(npz) as archive:
            members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
            missing = [k for k in KEYS if k not in members]
            if missing:
                raise DataError(f"{npz}: missing arrays {missing}; expected Keras' keys {list(KEYS)}")
            for key in KEYS:
                with archive.open(members[key]) as fh:
                    version = np.lib.format.read_magic(fh)
                    read_header = {(1, 0): np.lib.format.read_array_header_1_0}.get(
                        version, np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(fh)
                    declared = math.prod(shape) * dtype.itemsize
                    if not dtype.hasobject and (declared > members[key].file_size or declared > DATA_FILE_BYTES):
                        raise DataError(
                            f"{npz}: {key} claims shape {shape} ({declared:,} bytes) but holds "
                            f"{members[key].file_size:,}; a damaged file"
                        )
        with np.load(npz) as f:
            return {k: f[k] for k in KEYS}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{npz}: cannot read ({exc}); a download cut short? fetch it again") from None


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
                return read_npz(npz)
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


def content_hash(arrays: dict[str, np.ndarray]) -> str:
    """The sha256 of a dataset's four arrays as loaded (names, dtypes, shapes and bytes): the same data give the
    same hash whichever file format or folder they came from."""
    digest = hashlib.sha256()
    for key in KEYS:
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{array.dtype.str}:{array.shape};".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def check_arrays(arrays: dict[str, np.ndarray], dataset: str, where: str) -> dict[str, np.ndarray]:
    """Check a dataset's arrays before anything trains on them, and return them with 1-D labels.

    Images must have the dataset's shape and hold raw pixel values 0..255 (Keras' uint8 layout; images already
    scaled to [0, 1] would be scaled again); labels must be class indices below the dataset's number of
    classes (not one-hot), one per image.

    Raises:
        DataError: one line naming the array and what is wrong with it.
    """
    shape, classes = SHAPES[dataset]
    checked = {}
    for split in ("train", "test"):
        x, y = np.asarray(arrays[f"x_{split}"]), np.asarray(arrays[f"y_{split}"])
        name_x, name_y = f"{where}: x_{split}", f"{where}: y_{split}"
        if x.shape[1:] != shape:
            raise DataError(f"{name_x} has shape {x.shape}; {dataset} images are (N, {', '.join(map(str, shape))})")
        if len(x) == 0:
            raise DataError(f"{name_x} holds no images")
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise DataError(f"{name_x} has dtype {x.dtype}; expected pixel values 0..255 (uint8)")
        low, high = x.min(), x.max()
        if np.issubdtype(x.dtype, np.floating):
            if not (np.isfinite(low) and np.isfinite(high)):
                raise DataError(f"{name_x} holds NaN or infinite values; expected pixel values 0..255 (uint8)")
            if high <= 1.0:
                raise DataError(
                    f"{name_x} looks already scaled to [0, 1] (float, largest value {high:g}); regbench scales "
                    "raw pixels itself: store them as uint8 0..255 (x * 255, rounded), as Keras' datasets do"
                )
        if low < 0 or high > 255:
            raise DataError(f"{name_x} holds values from {low:g} to {high:g}; expected pixel values 0..255 (uint8)")
        if y.ndim == 2 and y.shape[1] > 1:
            raise DataError(
                f"{name_y} has shape {y.shape}, which looks one-hot; expected one class index per image "
                "(y.argmax(axis=1))"
            )
        if y.ndim > 1 and y.size != len(y):
            raise DataError(f"{name_y} has shape {y.shape}; expected one class index per image, shape (N,)")
        y = y.reshape(-1)
        if len(y) != len(x):
            raise DataError(f"{name_y} holds {len(y)} labels for {len(x)} images; expected one label per image")
        if not np.issubdtype(y.dtype, np.integer):
            if not (np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y))):
                raise DataError(f"{name_y} has dtype {y.dtype} with non-integer values; expected class indices")
        bad = np.flatnonzero((y < 0) | (y >= classes))
        if bad.size:
            raise DataError(
                f"{name_y} holds label {y[bad[0]]:g} at index {bad[0]} ({bad.size} such); {dataset} has classes "
                f"0..{classes - 1}"
            )
        if split == "train" and len(np.unique(y)) < 2:
            raise DataError(
                f"{name_y} holds only class {y[0]:g}; a classifier needs at least two classes to learn from"
            )
        checked[f"x_{split}"], checked[f"y_{split}"] = x, y
    return checked


def load_arrays(dataset: str, data_dir: str | Path | None = None) -> tuple[dict[str, np.ndarray], str]:
    """Load a dataset's raw arrays, checked (:func:`check_arrays`), and say where they came from.

    A data directory the user names (``data_dir``: ``data.dir``, ``--data-dir`` or ``REGBENCH_DATA_DIR``) is
    used or loading fails: nothing else is tried. Only without one are Debian's dataset folder and then Keras'
    download tried.

    Args:
        dataset: ``mnist``, ``fashion_mnist``, ``cifar10`` or ``cifar100``.
        data_dir: The data directory to load from. Defaults to ``REGBENCH_DATA_DIR`` when unset.

    Raises:
        DataError: saying where it looked and how to supply the data.
    """
    own = (
        f"CIFAR's unpacked Python batches ({CIFAR_BATCHES[dataset][0]}/)"
        if dataset in CIFAR_BATCHES
        else "the four IDX files"
    )
    supply = f"{dataset}.npz (Keras' keys x_train, y_train, x_test, y_test) or {own}"
    data_dir = data_dir or os.environ.get("REGBENCH_DATA_DIR")
    named = "a data directory you name (data.dir, --data-dir or REGBENCH_DATA_DIR) is used or the run fails"
    if data_dir:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise DataError(f"data directory {folder}: no such folder; {named}")
        arrays = _from_dir(folder, dataset)
        if arrays is None:
            raise DataError(
                f"data directory {folder}: no {dataset} files there; put {supply} there, or leave data.dir, "
                f"--data-dir and REGBENCH_DATA_DIR unset to use Debian's folder or Keras' download ({named})"
            )
        return check_arrays(arrays, dataset, str(folder)), str(folder)
    tried: list[str] = []
    for name in _names(dataset):
        folder = DEBIAN_DIR / name
        arrays = _from_dir(folder, dataset)
        if arrays is not None:
            return check_arrays(arrays, dataset, str(folder)), str(folder)
        tried.append(f"Debian dataset folder {folder}: no {dataset}.npz or {dataset} files there")
    try:
        arrays = _from_keras(dataset)
    except Exception as exc:  # noqa: BLE001 - any download failure is reported with the others
        tried.append(f"Keras download: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    else:
        return check_arrays(arrays, dataset, "keras.datasets"), "keras.datasets download"
    hints = [f"Put {supply} in a folder and pass it with --data-dir DIR, data.dir in the config, or REGBENCH_DATA_DIR."]
    if dataset == "fashion_mnist":
        hints.append("Or install Debian's package: apt-get install dataset-fashion-mnist")
    raise DataError([f"cannot load dataset {dataset!r}. Tried:"] + [f"  - {t}" for t in tried] + hints)
