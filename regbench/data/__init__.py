"""Datasets: where they are found (:mod:`.sources`), what each one is (:mod:`.datasets`) and how a run's
training, validation and test splits are made from them (:mod:`.splits`)."""

from regbench.data.datasets import CIFAR_BATCHES, DATASETS, IDX_FILES, KEYS
from regbench.data.sources import load_arrays, read_cifar, read_idx
from regbench.data.splits import Splits, data_key, forget_splits, prepare, splits_for

__all__ = [
    "CIFAR_BATCHES",
    "DATASETS",
    "IDX_FILES",
    "KEYS",
    "Splits",
    "data_key",
    "forget_splits",
    "load_arrays",
    "prepare",
    "read_cifar",
    "read_idx",
    "splits_for",
]
