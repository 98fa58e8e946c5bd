"""Dataset sources and the train/validation/test preparation."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_arrays, write_cifar

from regbench import data
from regbench.data import sources
from regbench.errors import DataError


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)


@pytest.fixture
def no_other_sources(monkeypatch, tmp_path):
    """Point Debian's folder somewhere empty and make the Keras download fail, as on an offline machine."""
    monkeypatch.setattr(sources, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.delenv("REGBENCH_DATA_DIR", raising=False)

    def offline(dataset):
        raise OSError("no internet")

    monkeypatch.setattr(sources, "_from_keras", offline)


def test_npz_in_data_dir(tmp_path, no_other_sources):
    arrays = synthetic_arrays()
    np.savez(tmp_path / "mnist.npz", **arrays)
    loaded, source = data.load_arrays("mnist", tmp_path)
    assert source == str(tmp_path)
    for key in data.KEYS:
        np.testing.assert_array_equal(loaded[key], arrays[key])


@pytest.mark.parametrize("gz", [True, False])
def test_idx_files_in_a_dataset_subfolder(tmp_path, no_other_sources, gz):
    arrays = synthetic_arrays()
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for key, stem in data.IDX_FILES.items():
        write_idx(folder / stem, arrays[key], gz)
    loaded, _ = data.load_arrays("fashion_mnist", tmp_path)
    np.testing.assert_array_equal(loaded["x_train"], arrays["x_train"])
    np.testing.assert_array_equal(loaded["y_test"], arrays["y_test"])


def test_env_var_is_used_when_no_dir_given(tmp_path, no_other_sources, monkeypatch):
    np.savez(tmp_path / "mnist.npz", **synthetic_arrays())
    monkeypatch.setenv("REGBENCH_DATA_DIR", str(tmp_path))
    _, source = data.load_arrays("mnist")
    assert source == str(tmp_path)


def test_debian_folder_is_used_when_no_data_directory_is_named(tmp_path, no_other_sources, monkeypatch):
    debian = tmp_path / "datasets"
    (debian / "fashion-mnist").mkdir(parents=True)
    for key, stem in data.IDX_FILES.items():
        write_idx(debian / "fashion-mnist" / stem, synthetic_arrays()[key], gz=True)
    monkeypatch.setattr(sources, "DEBIAN_DIR", debian)
    _, source = data.load_arrays("fashion_mnist")
    assert source == str(debian / "fashion-mnist")


def test_a_named_data_directory_is_used_or_loading_fails(tmp_path, no_other_sources, monkeypatch):
    """Debian's folder holds the data, but a data directory the user named is never replaced by it."""
    debian = tmp_path / "datasets"
    (debian / "mnist").mkdir(parents=True)
    np.savez(debian / "mnist" / "mnist.npz", **synthetic_arrays())
    monkeypatch.setattr(sources, "DEBIAN_DIR", debian)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no mnist files there"):
        data.load_arrays("mnist", tmp_path / "empty")
    with pytest.raises(DataError, match="no such folder"):
        data.load_arrays("mnist", tmp_path / "typo")
    monkeypatch.setenv("REGBENCH_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="no mnist files there"):
        data.load_arrays("mnist")


def test_missing_data_lists_every_source_tried_and_how_to_fix(tmp_path, no_other_sources):
    with pytest.raises(DataError) as info:
        data.load_arrays("fashion_mnist")
    text = str(info.value)
    assert "cannot load dataset 'fashion_mnist'" in text
    assert "no-debian" in text and "Keras download: OSError: no internet" in text
    assert "--data-dir" in text and "REGBENCH_DATA_DIR" in text
    assert "apt-get install dataset-fashion-mnist" in text


def test_the_content_hash_is_the_same_data_whatever_the_format(tmp_path, no_other_sources):
    arrays = synthetic_arrays()
    np.savez(tmp_path / "mnist.npz", **arrays)
    (tmp_path / "idx").mkdir()
    for key, stem in data.IDX_FILES.items():
        write_idx(tmp_path / "idx" / stem, arrays[key], gz=True)
    from_npz, _ = data.load_arrays("mnist", tmp_path)
    from_idx, _ = data.load_arrays("mnist", tmp_path / "idx")
    assert sources.content_hash(from_npz) == sources.content_hash(from_idx)
    changed = {**from_npz, "y_test": from_npz["y_test"].copy()}
    changed["y_test"][0] = (changed["y_test"][0] + 1) % 10
    assert sources.content_hash(changed) != sources.content_hash(from_npz)


def test_npz_without_keras_keys_is_rejected(tmp_path, no_other_sources):
    np.savez(tmp_path / "mnist.npz", images=np.zeros(3))
    with pytest.raises(DataError, match="missing arrays"):
        data.load_arrays("mnist", tmp_path)


def test_prepare_scales_and_splits_without_overlap():
    arrays = synthetic_arrays(n_train=200)
    s = data.prepare(arrays, validation_split=0.1, seed=0)
    assert s.x_train.dtype == np.float32 and 0.0 <= s.x_train.min() and s.x_train.max() <= 1.0
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (180, 20, 64)
    rows = {r.tobytes() for r in s.x_train} & {r.tobytes() for r in s.x_val}
    assert not rows, "validation examples leaked into the training set"
    np.testing.assert_allclose(s.x_test, arrays["x_test"] / 255.0)


def test_subset_and_split_are_seeded():
    arrays = synthetic_arrays(n_train=200)
    a = data.prepare(arrays, train_subset=50, validation_split=0.2, seed=1)
    b = data.prepare(arrays, train_subset=50, validation_split=0.2, seed=1)
    c = data.prepare(arrays, train_subset=50, validation_split=0.2, seed=2)
    assert (len(a.x_train), len(a.x_val)) == (40, 10)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)


def test_label_noise_changes_that_share_of_training_labels_only():
    arrays = synthetic_arrays(n_train=4000)
    clean = data.prepare(arrays, seed=3)
    noisy = data.prepare(arrays, label_noise=0.25, seed=3)
    changed = np.mean(clean.y_train != noisy.y_train)
    assert 0.22 < changed < 0.28
    np.testing.assert_array_equal(clean.y_val, noisy.y_val)
    assert noisy.y_train.min() >= 0 and noisy.y_train.max() <= 9


def test_too_large_subset_is_an_error():
    with pytest.raises(DataError, match="train_subset"):
        data.prepare(synthetic_arrays(n_train=100), train_subset=500)


def test_truncated_idx_file_is_an_error(tmp_path):
    write_idx(tmp_path / "x", np.zeros((4, 2, 2)), gz=False)
    (tmp_path / "x").write_bytes((tmp_path / "x").read_bytes()[:-3])
    with pytest.raises(DataError, match="truncated"):
        data.read_idx(tmp_path / "x")


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_cifar_batches_in_keras_format(tmp_path, no_other_sources, dataset):
    written = write_cifar(tmp_path / "data" / dataset, dataset)  # <dir>/<name>/cifar-10-batches-py/
    arrays, source = data.load_arrays(dataset, tmp_path / "data")
    assert source == str(tmp_path / "data")
    x_train = np.concatenate([x for x, _ in written["train"]])
    np.testing.assert_array_equal(arrays["x_train"], x_train)  # channels last, as Keras returns them
    np.testing.assert_array_equal(arrays["y_test"], written["test"][0][1])
    assert arrays["x_train"].shape == (len(x_train), 32, 32, 3)
    splits = data.prepare(arrays, validation_split=0.2)
    assert splits.num_classes == (10 if dataset == "cifar10" else 100)
    assert splits.x_train.shape[1:] == (32, 32, 3) and splits.x_train.dtype == np.float32


def test_a_broken_cifar_batch_names_the_file(tmp_path, no_other_sources):
    write_cifar(tmp_path, "cifar10")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="data_batch_3: not a cifar10 batch in Keras' format"):
        data.load_arrays("cifar10", tmp_path)


def test_missing_cifar_says_which_files_to_supply(tmp_path, no_other_sources):
    with pytest.raises(DataError) as info:
        data.load_arrays("cifar100", tmp_path)
    assert "CIFAR's unpacked Python batches (cifar-100-python/)" in str(info.value)


@pytest.mark.skipif(
    not (Path("/usr/share/datasets/fashion-mnist") / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist_from_debian_with_no_data_directory(monkeypatch):
    monkeypatch.delenv("REGBENCH_DATA_DIR", raising=False)
    arrays, source = data.load_arrays("fashion_mnist")
    assert source == "/usr/share/datasets/fashion-mnist"
    assert arrays["x_train"].shape == (60000, 28, 28) and arrays["x_test"].shape == (10000, 28, 28)
    assert np.bincount(arrays["y_train"]).tolist() == [6000] * 10  # Fashion-MNIST's balanced classes


class _RunsCode:
    """What a crafted pickle carries: unpickling it calls a function of the file's choosing."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_crafted_cifar_batch_runs_no_code_and_is_one_line_of_error(tmp_path: Path, no_other_sources):
    """Before, CIFAR batches went through plain pickle.load: loading this folder created the marker file."""
    import pickle

    write_cifar(tmp_path / "data", "cifar10")
    marker = tmp_path / "pwned"
    batch = tmp_path / "data" / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(pickle.dumps({b"data": _RunsCode(marker), b"labels": [0]}))
    with pytest.raises(DataError) as info:
        data.load_arrays("cifar10", tmp_path / "data")
    assert not marker.exists()
    assert len(info.value.problems) == 1 and "\n" not in info.value.problems[0]
    assert "data_batch_1: not a cifar10 batch in Keras' format" in info.value.problems[0]
    assert "pathlib" in info.value.problems[0] and "refused" in info.value.problems[0]
