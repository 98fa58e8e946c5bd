"""What each dataset regbench knows is: its name, file names, and the shape of one example with its classes."""

from __future__ import annotations

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


KEYS = tuple(IDX_FILES)


# One example's shape and the number of classes, by dataset: what a model is built for before any data are loaded.
SHAPES: dict[str, tuple[tuple[int, ...], int]] = {
    "mnist": ((28, 28), 10),
    "fashion_mnist": ((28, 28), 10),
    "cifar10": ((32, 32, 3), 10),
    "cifar100": ((32, 32, 3), 100),
}
DATASETS = tuple(SHAPES)


# CIFAR's Python batches, as keras.datasets downloads and unpacks them: folder, training files, test files,
# label key. Each file is a pickled dict with b"data" (N x 3072 uint8, channels first) and the labels.
CIFAR_BATCHES = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels"),
}


def _names(dataset: str) -> list[str]:
    """File/folder names a dataset may go by: fashion_mnist, fashion-mnist."""
    return list(dict.fromkeys([dataset, dataset.replace("_", "-")]))
