"""Data folders that are wrong, careless or hostile: `regbench run` answers each with one line of error and exit
2 before any folder is written, and never trains on data it misread. On ca983a6 images already in [0, 1] were
scaled again, one-hot labels made a 2-class problem, extra labels and a stray label 255 were accepted, and a
data directory that held nothing fell back to another copy of the data without a word."""

from __future__ import annotations

import gzip
import io
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_arrays, write_cifar
from typer.testing import CliRunner

from regbench.cli import app
from regbench.data import sources

runner = CliRunner()


def _npz(**changes) -> Callable[[Path], None]:
    """Write a synthetic mnist.npz with some arrays replaced."""

    def write(folder: Path) -> None:
        np.savez(folder / "mnist.npz", **{**synthetic_arrays(), **changes})

    return write


def _arrays() -> dict[str, np.ndarray]:
    return synthetic_arrays()


def _crafted_cifar(folder: Path) -> None:
    class Boom:
        def __reduce__(self):
            return (print, ("ran code",))

    write_cifar(folder, "cifar10")
    (folder / "cifar-10-batches-py" / "data_batch_1").write_bytes(pickle.dumps({b"data": Boom()}))


def _object_npz(folder: Path) -> None:
    arrays = {**_arrays(), "y_train": np.array([{"a": 1}] * 256, dtype=object)}
    np.savez(folder / "mnist.npz", **arrays)


def _half_npz(folder: Path) -> None:
    """A download cut short: the first half of a good npz."""
    buffer = io.BytesIO()
    np.savez(buffer, **_arrays())
    (folder / "mnist.npz").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


def _npz_claiming_a_huge_shape(folder: Path) -> None:
    """An npz whose x_train header declares 10^12 images (713 TiB) over 100 bytes: numpy would allocate first."""
    with zipfile.ZipFile(folder / "mnist.npz", "w") as archive:
        for key, array in _arrays().items():
            buffer = io.BytesIO()
            if key == "x_train":
                header = {"descr": "|u1", "fortran_order": False, "shape": (10**12, 28, 28)}
                np.lib.format.write_array_header_1_0(buffer, header)
                buffer.write(b"\0" * 100)
            else:
                np.save(buffer, array)
            archive.writestr(f"{key}.npy", buffer.getvalue())


def _idx_files(folder: Path, dims=None, body: bool = True, gzip_cut: bool = False) -> None:
    """The four IDX files of the synthetic arrays, with other dimensions, no body, or gzipped and cut short."""
    for key, stem in sources.IDX_FILES.items():
        array = _arrays()[key]
        shape = dims or array.shape
        data = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in shape[: array.ndim])
        data += array.tobytes() if body else b""
        if gzip_cut:
            packed = gzip.compress(data)
            (folder / f"{stem}.gz").write_bytes(packed[: len(packed) // 2])
        else:
            (folder / stem).write_bytes(data)


# case -> (what to write into the data folder, dataset, what the one line of error says)
CASES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "images already scaled to [0, 1]": (
        _npz(x_train=_arrays()["x_train"] / np.float32(255)),
        "mnist",
        "x_train looks already scaled to [0, 1]",
    ),
    "one-hot labels": (_npz(y_train=np.eye(10, dtype=np.uint8)[_arrays()["y_train"]]), "mnist", "looks one-hot"),
    "more labels than images": (
        _npz(y_test=np.concatenate([_arrays()["y_test"], [1, 2, 3]])),
        "mnist",
        "y_test holds 67 labels for 64 images",
    ),
    "a stray label 255": (
        _npz(y_train=np.where(np.arange(256) == 7, 255, _arrays()["y_train"]).astype(np.uint8)),
        "mnist",
        "y_train holds label 255 at index 7 (1 such); mnist has classes 0..9",
    ),
    "a negative label": (_npz(y_test=-np.ones(64, dtype=np.int64)), "mnist", "holds label -1 at index 0"),
    "fractional labels": (_npz(y_train=np.full(256, 0.5)), "mnist", "non-integer values"),
    "labels as text": (_npz(y_train=np.array(["cat"] * 256)), "mnist", "expected class indices"),
    "images of another shape": (
        _npz(x_train=np.zeros((256, 32, 32), dtype=np.uint8)),
        "mnist",
        "x_train has shape (256, 32, 32); mnist images are (N, 28, 28)",
    ),
    "pixels above 255": (
        _npz(x_test=np.full((64, 28, 28), 300, dtype=np.int16)),
        "mnist",
        "x_test holds values from 300 to 300",
    ),
    "NaN pixels": (_npz(x_train=np.full((256, 28, 28), np.nan)), "mnist", "NaN or infinite"),
    "an empty test set": (
        _npz(x_test=np.zeros((0, 28, 28), np.uint8), y_test=np.zeros(0, np.uint8)),
        "mnist",
        "x_test holds no images",
    ),
    "an npz without Keras' keys": (
        lambda folder: np.savez(folder / "mnist.npz", images=np.zeros(3)),
        "mnist",
        "missing arrays",
    ),
    "an npz that is not a zip file": (
        lambda folder: (folder / "mnist.npz").write_bytes(b"\x00not a zip"),
        "mnist",
        "mnist.npz: cannot read",
    ),
    "an npz holding pickled objects": (_object_npz, "mnist", "mnist.npz: cannot read"),
    "a truncated IDX file": (
        lambda folder: [
            (folder / stem).write_bytes(bytes([0, 0, 8, 1, 0, 0, 1, 0]) + b"\x01" * 3)
            for stem in sources.IDX_FILES.values()
        ],
        "mnist",
        "truncated IDX file",
    ),
    "an IDX file with a bad magic number": (
        lambda folder: [(folder / stem).write_bytes(b"GIF89a...") for stem in sources.IDX_FILES.values()],
        "mnist",
        "bad magic number",
    ),
    "a crafted CIFAR batch": (_crafted_cifar, "cifar10", "names builtins.print"),
    "a CIFAR batch that is no dict": (
        lambda folder: (
            write_cifar(folder, "cifar10"),
            (folder / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps([1, 2])),
        ),
        "cifar10",
        "expected a dict of arrays, got a list",
    ),
    "a named data folder with nothing in it": (lambda folder: None, "mnist", "no mnist files there"),
    # The second hardening round (issue 31): each was a traceback, or allocated before it checked.
    "a half-downloaded npz": (_half_npz, "mnist", "mnist.npz: cannot read (File is not a zip file)"),
    "an npz header claiming a huge shape": (
        _npz_claiming_a_huge_shape,
        "mnist",
        "x_train claims shape (1000000000000, 28, 28) (784,000,000,000,000 bytes) but holds",
    ),
    "an IDX file cut after its header": (
        lambda folder: _idx_files(folder, body=False),
        "mnist",
        "truncated IDX file (expected 200704 values, got 0)",
    ),
    "IDX dimensions that overflow 64 bits": (
        lambda folder: _idx_files(folder, dims=(2**32 - 1,) * 3),
        "mnist",
        "truncated IDX file (expected 79228162458924105385300197375 values",
    ),
    "a truncated gzip": (
        lambda folder: _idx_files(folder, gzip_cut=True),
        "mnist",
        "cannot read (Compressed file ended before the end-of-stream marker was reached)",
    ),
    "a one-class dataset": (
        _npz(y_train=np.full(256, 3, dtype=np.uint8)),
        "mnist",
        "y_train holds only class 3; a classifier needs at least two classes",
    ),
}


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Another copy of every dataset is where regbench used to fall back to: it must not be used."""
    debian = tmp_path / "debian"
    (debian / "mnist").mkdir(parents=True)
    np.savez(debian / "mnist" / "mnist.npz", **synthetic_arrays(seed=1))
    monkeypatch.setattr(sources, "DEBIAN_DIR", debian)
    monkeypatch.delenv("REGBENCH_DATA_DIR", raising=False)
    monkeypatch.setattr(sources, "_from_keras", lambda dataset: synthetic_arrays(seed=2))


def _run(study: Path, data: Path, out: Path, dataset: str):
    args = ["run", str(study), "--data-dir", str(data), "--out", str(out), "--set", f"data.dataset={dataset}"]
    return runner.invoke(app, args)


@pytest.mark.parametrize("case", list(CASES))
def test_a_malformed_data_folder_is_one_line_of_error(tmp_path: Path, tiny_study: Path, offline, case: str, capfd):
    make, dataset, message = CASES[case]
    folder = tmp_path / "data"
    folder.mkdir()
    make(folder)
    result = _run(tiny_study, folder, tmp_path / "out", dataset)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()  # the plan's one line, then the error's
    assert len(lines) == 2 and lines[1].startswith("Error: ") and message in lines[1], result.output
    assert "Traceback" not in result.output and "ran code" not in capfd.readouterr().out
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir()), "a folder was written"


def test_a_named_data_folder_that_does_not_exist_never_falls_back(tmp_path: Path, tiny_study: Path, offline):
    result = _run(tiny_study, tmp_path / "dta", tmp_path / "out", "mnist")
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[1:] == [
        f"Error: data directory {tmp_path / 'dta'}: no such folder; a data directory you name (data.dir, "
        "--data-dir or REGBENCH_DATA_DIR) is used or the run fails"
    ]


def test_a_data_environment_variable_is_a_named_data_directory(tmp_path, tiny_study, offline, monkeypatch):
    (tmp_path / "mnist-elsewhere").mkdir()
    monkeypatch.setenv("REGBENCH_DATA_DIR", str(tmp_path / "mnist-elsewhere"))
    result = runner.invoke(app, ["run", str(tiny_study), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert f"data directory {tmp_path / 'mnist-elsewhere'}: no mnist files there" in result.output


def test_a_float_copy_of_raw_pixels_is_the_same_data(tmp_path):
    """Pixels stored as floats 0..255 (not rescaled) are accepted and scale to the same images."""
    from regbench.data import load_arrays, prepare

    arrays = synthetic_arrays()
    np.savez(tmp_path / "mnist.npz", **{**arrays, "x_train": arrays["x_train"].astype(np.float64)})
    loaded, _ = load_arrays("mnist", tmp_path)
    np.testing.assert_array_equal(prepare(loaded).x_train, prepare(arrays).x_train)
