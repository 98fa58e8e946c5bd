"""regbench's batch order: which training examples each step of a run sees. regbench draws it, not Keras.

Keras' own ``fit(shuffle=True)`` differs by backend. On TensorFlow, with a seed set, its array adapter
shuffles inside a ``tf.data`` pipeline whose seed is fixed when the pipeline is built, so every epoch repeats
the first epoch's permutation (the behaviour reported in tensorflow/tensorflow#29558 and #35682;
``bench/tf_shuffle_repeats.py`` reproduces it); the JAX backend draws a new permutation each epoch. The same
study then gives different verdicts on the two backends (batch normalization loses its batch-to-batch noise).

Here a run's permutation for epoch ``e`` is drawn with NumPy from ``(seed, e)`` alone
(:func:`epoch_order`), so it is the same on every backend, alone or fused, in any process and on resume.
A fused group feeds each branch its own seed's order: the input carries one *slot* per distinct seed
(``[batch, slots, ...]``), and branches that share a seed share a slot.
"""

from __future__ import annotations

import math

import keras
import numpy as np

ORDER_STREAM = 0xBA7C4  # keeps the batch-order stream apart from other uses of a run's seed


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The permutation of ``n`` training examples that a run with ``seed`` trains on in ``epoch`` (0-based)."""
    return np.random.default_rng([ORDER_STREAM, seed, epoch]).permutation(n)


class BatchOrder(keras.callbacks.Callback):
    """Each epoch's order of the training examples, per seed slot. A Keras callback, so that the data source
    knows which epoch ``fit`` is in: ``on_epoch_begin`` runs before an epoch's first batch is drawn.

    Args:
        n: Number of training examples.
        seeds: One seed per slot, or None for no shuffling (the examples in stored order, every epoch).
        slots: Give batches a slot axis (``[batch, slots]`` indices, for fused models). Defaults to False:
            ``[batch]`` indices from the first seed.
    """

    def __init__(self, n: int, seeds: list[int] | None, slots: bool = False):
        super().__init__()
        self.n, self.seeds, self.slots = n, seeds, slots
        self.epoch = 0
        self._cached: tuple[int, np.ndarray] | None = None

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.epoch = epoch

    def indices(self) -> np.ndarray:
        """This epoch's example indices: ``[n]``, or ``[n, slots]`` with ``slots=True``."""
        if self._cached is None or self._cached[0] != self.epoch:
            seeds = self.seeds if self.seeds is not None else [None]
            orders = [np.arange(self.n) if s is None else epoch_order(s, self.epoch, self.n) for s in seeds]
            order = np.stack(orders, axis=1) if self.slots else orders[0]
            self._cached = (self.epoch, order)
        return self._cached[1]


class _OrderedBatches(keras.utils.PyDataset):
    """Batches in a BatchOrder's order, for backends that iterate Python data (JAX, torch)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, order: BatchOrder):
        super().__init__()
        self.x, self.y, self.batch_size, self.order = x, y, batch_size, order

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, i: int):
        idx = self.order.indices()[i * self.batch_size : (i + 1) * self.batch_size]
        return self.x[idx], self.y[idx]


_TF_COPIES: dict[int, tuple[np.ndarray, object]] = {}  # id(array) -> (array, its TensorFlow copy)


def _tf_copy(array: np.ndarray):
    """One TensorFlow copy of a dataset array per process, shared by every run: each run's pipeline captures
    it, and a copy per run stayed alive with its traced pipeline (peak memory +660 MB over the seed study)."""
    import tensorflow as tf

    held = _TF_COPIES.get(id(array))
    if held is None or held[0] is not array:
        held = _TF_COPIES[id(array)] = (array, tf.convert_to_tensor(array))
    return held[1]


def training_input(x: np.ndarray, y: np.ndarray, batch_size: int, order: BatchOrder):
    """What to pass to ``fit`` as its data, with ``order`` among its callbacks and no ``batch_size``.

    On TensorFlow a ``tf.data`` pipeline gathers each batch from tensors made once; it asks for the epoch's
    indices when the epoch's iterator starts (after ``on_epoch_begin``). Elsewhere a ``PyDataset`` slices
    the numpy arrays.
    """
    if keras.backend.backend() != "tensorflow":
        return _OrderedBatches(x, y, batch_size, order)
    import tensorflow as tf

    images, labels = _tf_copy(x), _tf_copy(y)
    shape = [order.n, len(order.seeds or [None])] if order.slots else [order.n]

    def epoch_indices(_):
        idx = tf.numpy_function(lambda: order.indices().astype(np.int64), [], tf.int64, stateful=True)
        idx.set_shape(shape)
        return idx

    return (
        tf.data.Dataset.range(1)
        .map(epoch_indices)
        .unbatch()
        .batch(batch_size)
        .map(lambda idx: (tf.gather(images, idx), tf.gather(labels, idx)))
        .prefetch(tf.data.AUTOTUNE)
    )
