"""regbench's batch order: which training examples each step of a run sees. regbench draws it, not Keras.

Keras' own ``fit(shuffle=True)`` differs by backend. On TensorFlow, with a seed set, its array adapter
shuffles inside a ``tf.data`` pipeline whose seed is fixed when the pipeline is built, so every epoch repeats
the first epoch's permutation (the behaviour reported in tensorflow/tensorflow#29558 and #35682;
``bench/tf_shuffle_repeats.py`` reproduces it); the JAX backend draws a new permutation each epoch. The same
study then gives different verdicts on the two backends (batch normalization loses its batch-to-batch noise).

Here a run's permutation for epoch ``e`` is drawn with NumPy from ``(seed, e)`` alone
(:func:`epoch_order`), so it is the same on every backend, alone or fused, in any process and on resume.
A fused unit feeds each branch its own seed's order: the input carries one *slot* per distinct seed
(``[batch, slots, ...]``), and branches that share a seed share a slot.

MixUp (``data.augmentation.mixup``) is drawn here too, per ``(seed, epoch)`` (:func:`epoch_mixup`), and applied
where each batch is assembled (:func:`assemble`): the same blends on every backend.
"""

from __future__ import annotations

import math

import keras
import numpy as np

BATCH_ORDER = "regbench-1"  # names the scheme of epoch_order below; recorded with every run (runtime)
ORDER_STREAM = 0xBA7C4  # keeps the batch-order stream apart from other uses of a run's seed


MIX_STREAM = 0x313C5  # MixUp's draws


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The permutation of ``n`` training examples that a run with ``seed`` trains on in ``epoch`` (0-based)."""
    return np.random.default_rng([ORDER_STREAM, seed, epoch]).permutation(n)


def epoch_mixup(seed: int, epoch: int, order: np.ndarray, batch_size: int, alpha: float):
    """MixUp's draws for one epoch: for each example of ``order``, the example it is blended with (another of
    its batch: a random permutation within each batch, as keras.layers.MixUp shuffles its batch) and its weight,
    drawn from Beta(alpha, alpha) per example as keras.layers.MixUp draws it."""
    rng = np.random.default_rng([MIX_STREAM, seed, epoch])
    n = len(order)
    within = np.argsort(np.arange(n) // batch_size + rng.random(n), kind="stable")
    return order[within], rng.beta(alpha, alpha, n).astype("float32")


def assemble(images, labels, item, classes: int = 0):
    """One training batch from an index item: ``(idx,)`` gives the examples ``idx`` (``[batch]``, or
    ``[batch, slots]`` for a fused model); ``(idx, partner, weight)`` blends each example with its partner, images
    and one-hot labels alike (``weight * own + (1 - weight) * partner's``, the formula of keras.layers.MixUp).
    Backend ops only: it runs in a tf.data pipeline, in JAX's compiled step, or on numpy arrays."""
    ops = keras.ops
    if len(item) == 1:
        return ops.take(images, item[0], axis=0), ops.take(labels, item[0], axis=0)
    idx, partner, weight = item
    own, other = ops.take(images, idx, axis=0), ops.take(images, partner, axis=0)
    w = ops.reshape(weight, (-1,) + (1,) * (len(own.shape) - 1))
    x = w * own + (1.0 - w) * other
    hot = [ops.one_hot(ops.take(labels, i, axis=0), classes) for i in (idx, partner)]
    w = ops.reshape(weight, (-1, 1))
    return x, w * hot[0] + (1.0 - w) * hot[1]


class BatchOrder(keras.callbacks.Callback):
    """Each epoch's order of the training examples, per seed slot (and MixUp's draws). A Keras callback, so that
    the data source knows which epoch ``fit`` is in: ``on_epoch_begin`` runs before an epoch's first batch is
    drawn.

    Args:
        n: Number of training examples.
        seeds: One seed per slot, or None for no shuffling (the examples in stored order, every epoch).
        slots: Give batches a slot axis (``[batch, slots]`` indices, for fused models). Defaults to False:
            ``[batch]`` indices from the first seed.
        mixup: MixUp's alpha (0: none) and the batch size it mixes within; not with ``slots``.
    """

    def __init__(self, n: int, seeds: list[int] | None, slots: bool = False, mixup: tuple[float, int] = (0.0, 0)):
        super().__init__()
        self.n, self.seeds, self.slots = n, seeds, slots
        self.mixup = mixup if mixup[0] > 0 else None
        if self.mixup and slots:
            raise ValueError("BatchOrder: MixUp is for runs alone, not fused slots")
        self.epoch = 0
        self._cached: tuple[int, np.ndarray] | None = None
        self._mixed: tuple[int, tuple] | None = None

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.epoch = epoch

    def indices(self) -> np.ndarray:
        """This epoch's example indices: ``[n]``, or ``[n, slots]`` with ``slots=True``."""
        if self._cached is None or self._cached[0] != self.epoch:
            seeds = self.seeds if self.seeds is not None else [None]
            orders = [np.arange(self.n) if s is None else epoch_order(s, self.epoch, self.n) for s in seeds]
            order = np.stack(orders, axis=1) if self.slots else orders[0]
            self._cached = (self.epoch, order.astype(np.int32))
        return self._cached[1]

    def items(self) -> tuple[np.ndarray, ...]:
        """This epoch's index items, one row per example: ``(idx,)``, or ``(idx, partner, weight)`` with MixUp
        (see :func:`assemble`)."""
        idx = self.indices()
        if self.mixup is None:
            return (idx,)
        if self._mixed is None or self._mixed[0] != self.epoch:
            alpha, batch_size = self.mixup
            seed = (self.seeds or [0])[0]
            partner, weight = epoch_mixup(seed, self.epoch, idx, batch_size, alpha)
            self._mixed = (self.epoch, (idx, partner, weight))
        return self._mixed[1]


class _OrderedBatches(keras.utils.PyDataset):
    """Batches in a BatchOrder's order, for backends that iterate Python data (JAX, torch); with
    ``indices_only``, each batch's index item (the JAX device loop assembles the batch itself)."""

    def __init__(self, x, y, batch_size: int, order: BatchOrder, classes: int, indices_only: bool = False):
        super().__init__()
        self.x, self.y, self.batch_size, self.order = x, y, batch_size, order
        self.classes, self.indices_only = classes, indices_only

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, i: int):
        item = tuple(a[i * self.batch_size : (i + 1) * self.batch_size] for a in self.order.items())
        if self.indices_only:
            return (item,)
        return tuple(np.asarray(keras.ops.convert_to_numpy(a)) for a in assemble(self.x, self.y, item, self.classes))


# On JAX, train from device copies of the data (backend.keras_internals.train_on_device); False: Keras' own loop.
DEVICE_LOOP = True


def training_input(model: keras.Model, x: np.ndarray, y: np.ndarray, batch_size: int, order: BatchOrder, classes: int):
    """What to pass to ``model.fit`` as its data, with ``order`` among its callbacks and no ``batch_size``.

    On JAX the arrays go to the device once and ``fit`` is fed index items that the model's compiled step turns
    into batches (:func:`regbench.backend.keras_internals.train_on_device`). On TensorFlow a ``tf.data`` pipeline
    assembles each batch from tensors made once; it asks for the epoch's index items when the epoch's iterator starts
    (after ``on_epoch_begin``). Elsewhere a ``PyDataset`` assembles them from the numpy arrays. ``classes``:
    the number of classes, for MixUp's one-hot labels.
    """

    def make_batch(images, labels, item):
        return assemble(images, labels, item, classes)

    from regbench.backend.device_arrays import shared_copy
    from regbench.backend.keras_internals import train_on_device

    if keras.backend.backend() != "tensorflow":
        sample = tuple(a[:1] for a in order.items())
        on_device = DEVICE_LOOP and train_on_device(model, x, y, sample, make_batch)
        return _OrderedBatches(x, y, batch_size, order, classes, indices_only=on_device)
    import tensorflow as tf

    images, labels = shared_copy(x, tf.convert_to_tensor), shared_copy(y, tf.convert_to_tensor)
    first = order.items()
    specs = [(tf.as_dtype(a.dtype), [order.n, *a.shape[1:]]) for a in first]

    def epoch_items(_):
        items = tf.numpy_function(order.items, [], [dtype for dtype, _ in specs], stateful=True)
        for item, (_, shape) in zip(items, specs, strict=True):
            item.set_shape(shape)
        return tuple(items)

    return (
        tf.data.Dataset.range(1)
        .map(epoch_items)
        .unbatch()
        .batch(batch_size)
        .map(lambda *item: make_batch(images, labels, item))
        .prefetch(tf.data.AUTOTUNE)
    )
