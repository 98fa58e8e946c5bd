"""Keras layers and constraints for K runs side by side ("branches") in one model: the fused counterparts of
Dense and MaxNorm, and the random regularizers (dropout, Gaussian noise and dropout) of runs alone and fused
alike, each run drawing from streams of its own. Activations of a fused model travel as [batch, K, units].

Which of them a fused model uses, and with which per-branch values, is decided in :mod:`regbench.training.components`.
"""

from __future__ import annotations

import hashlib
import math

import keras
import numpy as np


def _layout(values: list[float], branches: int, units: int, slots: int | None) -> np.ndarray:
    """Per-branch values shaped to broadcast against a kernel: [K, 1, 1] for a [K, in, units] kernel, or
    [slots, 1, per_slot * units] for a first-layer kernel [slots, in, per_slot * units]."""
    v = np.asarray(values, dtype="float32")
    if slots is None:
        return v.reshape(branches, 1, 1)
    return np.repeat(v.reshape(slots, branches // slots), units, axis=1)[:, None]


def _with_l2_gradient(kernel, l2):
    """``kernel`` itself, whose gradient gets each branch's L2 penalty gradient added: ``l2 * 2w``, the gradient of
    Keras' L2 regularizer (its arithmetic too). Fused runs report their penalties from the weights at the end of
    each epoch (training.fused), so a step needs the penalty's gradient, not its value, which would cost one more
    pass over every kernel per step. ``l2`` is an input of the step (see BranchDense), not a constant of it."""

    @keras.ops.custom_gradient
    def identity(w, lambdas):
        def grad(*args, upstream=None):
            if upstream is None:
                (upstream,) = args
            return upstream + lambdas * (2.0 * w), keras.ops.zeros_like(lambdas)

        return w, grad

    return identity(kernel, keras.ops.convert_to_tensor(l2))


def _values(layer: keras.layers.Layer, name: str, values: np.ndarray):
    """A non-trainable weight of ``layer`` holding per-branch ``values``: state of the fused model, so that its
    compiled programs do not depend on them. A sweep of other rates or penalties with the same shapes (and the
    same branches at zero) then reuses the programs that JAX's persistent compile cache holds."""
    return layer.add_weight(
        shape=values.shape, initializer=lambda shape, dtype=None: values, trainable=False, name=name
    )


class BranchMaxNorm(keras.constraints.Constraint):
    """keras.constraints.MaxNorm per branch: each unit's incoming weights (axis 1 of a branch kernel) rescaled to
    an L2 norm of at most that branch's c, with Keras' formula; branches without a max-norm are left as they are."""

    def __init__(self, limits: np.ndarray):
        self.limits = limits  # laid out like the kernel (see _layout); inf where a branch has none
        self.bounded = np.isfinite(limits)
        self.finite = np.where(self.bounded, limits, 1.0).astype("float32")

    def __call__(self, w):
        w = keras.ops.convert_to_tensor(w)
        norms = keras.ops.sqrt(keras.ops.sum(keras.ops.square(w), axis=1, keepdims=True))
        desired = keras.ops.clip(norms, 0.0, self.finite)
        return keras.ops.where(self.bounded, w * (desired / (keras.backend.epsilon() + norms)), w)


class BranchDense(keras.layers.Layer):
    """K Dense layers side by side, with per-branch L1/L2 penalties and max-norm constraints.

    The first layer takes the input as [batch, slots, in]: one slot per distinct seed, each holding that seed's
    batch, and ``K / slots`` branches per slot (branch ``b = slot * per_slot + j``). Its kernel is stored as
    [slots, in, per_slot * units], so each slot's batch meets all of its branches in one matrix product; with one
    slot that is one wide product [batch, in] x [in, K*units] for every branch, faster than K products. An input
    with a single slot is shared by every branch (evaluation). Other layers (``slots=None``) take [batch, K, in],
    hold [K, in, units] kernels and use a batched einsum.
    """

    def __init__(
        self,
        units: int,
        l1: list[float],
        l2: list[float],
        activation: str | None = None,
        slots: int | None = None,
        max_norm: list[float | None] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units, self.l1, self.l2 = units, list(l1), list(l2)
        self.branches = len(self.l1)
        self.slots = slots
        self.max_norm = list(max_norm) if max_norm is not None else [None] * self.branches
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        k, n_in, units = self.branches, input_shape[-1], self.units
        shape = (k, n_in, units) if self.slots is None else (self.slots, n_in, (k // self.slots) * units)

        def per_branch(values):
            return _layout(values, k, units, self.slots)

        # Only the terms some branch uses: each is a pass over every branch's kernel in every step (with K=48
        # branches the unused L1 term of an L2 sweep cost about as much as the L2 term itself). L2 enters as its
        # gradient alone (_with_l2_gradient); L1 stays a regularizer, so that its gradient at a weight of exactly
        # zero is the backend's own (JAX's derivative of |w| there is 1, TensorFlow's 0), as in a plain run.
        self.l1_values = _values(self, "l1", per_branch(self.l1)) if any(self.l1) else None
        self.l2_values = _values(self, "l2", per_branch(self.l2)) if any(self.l2) else None
        constraint = None
        if any(c is not None for c in self.max_norm):
            constraint = BranchMaxNorm(per_branch([math.inf if c is None else c for c in self.max_norm]))
        self.kernel = self.add_weight(
            shape=shape,
            initializer="zeros",
            name="kernel",
            regularizer=None if self.l1_values is None else lambda w: keras.ops.sum(self.l1_values * keras.ops.abs(w)),
            constraint=constraint,
        )
        self.bias = self.add_weight(shape=(k, self.units), initializer="zeros", name="bias")

    def call(self, x, training=False):
        k, units = self.branches, self.units
        kernel = self.kernel if self.l2_values is None else _with_l2_gradient(self.kernel, self.l2_values)
        if self.slots is None and not training:  # evaluation's large batches: branch-major, one product per
            # branch, faster there; at training's small batches it is not, and training keeps the product below
            y = keras.ops.einsum("kbi,kio->kbo", keras.ops.transpose(x, (1, 0, 2)), kernel)
            y = keras.ops.transpose(y, (1, 0, 2))
        elif self.slots is None:
            y = keras.ops.einsum("bki,kio->bko", x, kernel)
        elif x.shape[1] == 1 or self.slots == 1:  # one batch for every branch
            kernel = keras.ops.reshape(keras.ops.transpose(kernel, (1, 0, 2)), (-1, k * units))
            y = keras.ops.matmul(x[:, 0], kernel)
        else:  # slot-major around a batched product: XLA's CPU backend runs einsum("bsi,sio->bso") as a slow
            # transposed product
            x = keras.ops.transpose(x, (1, 0, 2))
            y = keras.ops.transpose(keras.ops.einsum("sbi,sio->sbo", x, kernel), (1, 0, 2))
        y = keras.ops.reshape(y, (-1, k, units))
        return self.activation(y + self.bias)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.branches, self.units)

    def branch_kernels(self) -> np.ndarray:
        """The kernels as [K, in, units], whatever the storage layout."""
        w = np.asarray(keras.ops.convert_to_numpy(self.kernel))
        if self.slots is None:
            return w.copy()
        s, n_in, k = self.slots, w.shape[1], self.branches
        return w.reshape(s, n_in, k // s, self.units).transpose(0, 2, 1, 3).reshape(k, n_in, self.units)

    def assign_branch_kernels(self, kernels: np.ndarray) -> None:
        if self.slots is not None:
            k, n_in, units = kernels.shape
            s = self.slots
            kernels = kernels.reshape(s, k // s, n_in, units).transpose(0, 2, 1, 3).reshape(s, n_in, -1)
        self.kernel.assign(kernels)


class SlotsToBranches(keras.layers.Layer):
    """[batch, slots, ...] -> [batch, K, ...]: each slot's batch repeated for its ``K / slots`` branches (a single
    slot for all of them), for per-branch layers that come before the first Dense layer (input dropout)."""

    def __init__(self, branches: int, **kwargs):
        super().__init__(**kwargs)
        self.branches = branches

    def call(self, x):
        return keras.ops.repeat(x, self.branches // x.shape[1], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.branches, *input_shape[2:])


def stream_seed(run_seed: int, name: str) -> int:
    """The seed of one random stream of a run (a regularizer layer's): from the run seed and the stream's name
    alone, so that it is the same however the run is trained — alone, or as any branch of any fused model."""
    digest = hashlib.sha256(f"{run_seed}/stream/{name}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _bits(key, shape):
    """Random uint32 bits of ``shape`` from a stream's key (int32 [2]: seed, step): on JAX from XLA's own
    Threefry (``lax.rng_bit_generator``, faster on the CPU than jax.random's rolled loop; docs/performance.md),
    on TensorFlow from its stateless Philox. One call per stream: a batched draw would give other numbers."""
    if keras.backend.backend() == "jax":
        import jax

        state = jax.numpy.concatenate([key.astype("uint32"), jax.numpy.array([0x243F6A88, 0x85A308D3], "uint32")])
        _, bits = jax.lax.rng_bit_generator(
            state, tuple(shape), dtype="uint32", algorithm=jax.lax.RandomAlgorithm.RNG_THREE_FRY
        )
        return bits
    import tensorflow as tf

    return tf.random.stateless_uniform(tuple(shape), seed=key, minval=None, maxval=None, dtype=tf.uint32)


def uniform(key, shape):
    """Uniform numbers in [0, 1), 24 bits each."""
    return keras.ops.cast(keras.ops.right_shift(_bits(key, shape), 8), "float32") * np.float32(2.0**-24)


def normal(key, shape):
    """Standard normal numbers, by the inverse error function of open-interval uniforms."""
    bits = keras.ops.cast(keras.ops.right_shift(_bits(key, shape), 8), "float32")
    u = (bits + np.float32(0.5)) * np.float32(2.0**-24)
    return np.float32(math.sqrt(2.0)) * keras.ops.erfinv(np.float32(2.0) * u - np.float32(1.0))


class KeyedRandom(keras.layers.Layer):
    """A random transformation in training (identity in inference) whose numbers come from one stream per run,
    keyed by the run's seed and the layer (:func:`stream_seed`) and advanced one step per training step — never
    by the layer's place in a model. So a run's masks and noise are the same alone (input [batch, units], one
    stream) and as any branch of any fused model (input [batch, K, units], one stream per branch): fused runs
    are the same runs as alone, whatever their unit. Streams are drawn only for branches whose value is > 0;
    the others pass through untouched."""

    def __init__(self, values: list[float], seeds: list[int], **kwargs):
        super().__init__(**kwargs)
        values = np.asarray(values, dtype="float32")
        self.active = np.flatnonzero(values > 0)
        # Where each branch's output comes from in concatenate([transformed active branches, input]).
        self.source = np.arange(len(values)) + len(self.active)
        self.source[self.active] = np.arange(len(self.active))
        self.values = self.prepare(values[self.active])
        self.seeds = [int(seeds[b]) for b in self.active]

    @staticmethod
    def prepare(values: np.ndarray) -> np.ndarray:
        """What ``transform`` takes for each active branch, computed once (float32)."""
        return values

    def build(self, input_shape):
        if not len(self.active):
            return
        self.branch_values = _values(self, "values", self.values[None, :, None])
        keys = np.array([[s, 0] for s in self.seeds], dtype="int32")
        self.keys = self.add_weight(
            shape=keys.shape, initializer=lambda shape, dtype=None: keys, trainable=False, dtype="int32", name="keys"
        )

    def draw(self, key, shape):
        raise NotImplementedError

    def transform(self, x, noise, values):
        raise NotImplementedError

    def call(self, x, training=False):
        if not training or not len(self.active):
            return x
        keys = keras.ops.convert_to_tensor(self.keys)
        self.keys.assign(keys + np.array([0, 1], dtype="int32"))
        plain = len(x.shape) == 2
        shape = keras.ops.shape(x) if plain else (keras.ops.shape(x)[0], x.shape[2])
        noise = keras.ops.stack([self.draw(keys[i], shape) for i in range(len(self.active))], axis=1)
        if plain:
            return self.transform(x, noise[:, 0], self.branch_values[0])
        if len(self.active) == x.shape[1]:
            return self.transform(x, noise, self.branch_values)
        y = self.transform(keras.ops.take(x, self.active, axis=1), noise, self.branch_values)
        return keras.ops.take(keras.ops.concatenate([y, x], axis=1), self.source, axis=1)


class KeyedDropout(KeyedRandom):
    """Dropout with one rate per stream (keras.layers.Dropout's rescaling by 1 / (1 - rate))."""

    @staticmethod
    def prepare(rates):
        return 1.0 - rates  # the probability to keep a unit

    def draw(self, key, shape):
        return uniform(key, shape)

    def transform(self, x, noise, keep):
        return keras.ops.where(noise < keep, x / keep, keras.ops.zeros_like(x))


class KeyedGaussianNoise(KeyedRandom):
    """Additive zero-mean Gaussian noise with one stddev per stream (keras.layers.GaussianNoise)."""

    def draw(self, key, shape):
        return normal(key, shape)

    def transform(self, x, noise, stddevs):
        return x + noise * stddevs


class KeyedGaussianDropout(KeyedRandom):
    """Multiplicative 1-centred Gaussian noise of stddev sqrt(rate / (1 - rate)) per stream
    (keras.layers.GaussianDropout)."""

    @staticmethod
    def prepare(rates):
        return np.sqrt(rates / (1.0 - rates))

    def draw(self, key, shape):
        return normal(key, shape)

    def transform(self, x, noise, stddevs):
        return x * (1.0 + noise * stddevs)
