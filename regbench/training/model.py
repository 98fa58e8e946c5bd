"""Build the Keras model of one variant. The only place the plain model's layers are put in order; what each
regularizer contributes comes from :mod:`regbench.training.components`."""

from __future__ import annotations

import hashlib
import random

import keras

from regbench.config.schema import VariantConfig
from regbench.data.datasets import SHAPES
from regbench.training import components, losses


def layer_seed(seed: int, name: str) -> int:
    """The seed of one layer's random numbers in a run: from the run seed and the layer's name only."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:4], "big")


class _Stack:
    """The layers of one variant's plain model, each made as the components say, each drawing its random numbers
    from (run seed, its name) when a seed is given (see :func:`build_model`)."""

    STREAMED = ("input_layers", "after_activation")  # hooks whose layers draw streams of the run's (stream seed)

    def __init__(self, cfg: VariantConfig, seed: int | None, streams: bool):
        self.cfg, self.seed, self.parts = cfg, seed, components.COMPONENTS
        self.stream = (seed if seed is not None else random.randrange(2**31)) if streams else None

    def kwargs(self, hook: str) -> dict:
        out: dict = {}
        for c in self.parts:
            out.update(getattr(c, hook)(self.cfg))
        return out

    def draws(self, name: str) -> None:
        """What is made next draws from (run seed, ``name``)."""
        if self.seed is not None:
            random.seed(layer_seed(self.seed, name))

    def each(self, hook: str, *args) -> list:
        """The layers every component adds at ``hook``, each component's drawing from its own stream."""
        out = []
        for c in self.parts:
            self.draws(f"{c.name}/{hook}/{'/'.join(map(str, args))}")
            out += getattr(c, hook)(self.cfg, *args, *((self.stream,) if hook in self.STREAMED else ()))
        return out

    def block(self, make, suffix: str, after, name: str) -> list:
        """A Dense or Conv2D layer ``name`` (``make(use_bias=..., activation=...)``) with its normalization,
        activation and the layers that ``after()`` makes (normalization draws no random numbers)."""
        activation = self.cfg.model.activation
        norm = [n for c in self.parts for n in c.normalization(self.cfg, suffix)]
        self.draws(name)
        out = [make(use_bias=not norm, activation=None if norm else activation)] + norm
        if norm:
            out.append(keras.layers.Activation(activation, name=f"activation_{suffix}"))
        return out + after()

    def conv_blocks(self) -> list[keras.layers.Layer]:
        """Conv2D (same padding) -> (normalization) -> activation -> (SpatialDropout2D) -> 2x2 pooling, per filter
        count of model.conv_filters."""
        m, layers = self.cfg.model, []
        for i, filters in enumerate(m.conv_filters or [], start=1):
            layers += self.block(
                lambda filters=filters, i=i, **kw: keras.layers.Conv2D(
                    filters, m.kernel_size, padding="same", name=f"conv_{i}", **self.kwargs("conv_kwargs"), **kw
                ),
                f"conv_{i}",
                lambda i=i: self.each("after_conv_block", i),
                f"conv_{i}",
            )
            pool = {"max": keras.layers.MaxPooling2D, "avg": keras.layers.AveragePooling2D}.get(m.pool or "")
            if pool is not None:
                layers.append(pool(2, name=f"pool_{i}"))
        return layers

    def hidden(self) -> list[keras.layers.Layer]:
        """Dense -> (normalization) -> activation -> (noise, dropout), per width of model.hidden_units."""
        layers = []
        for i, units in enumerate(self.cfg.model.hidden_units, start=1):
            layers += self.block(
                lambda units=units, i=i, **kw: keras.layers.Dense(
                    units, name=f"dense_{i}", **self.kwargs("dense_kwargs"), **kw
                ),
                str(i),
                lambda i=i: self.each("after_activation", i),
                f"dense_{i}",
            )
        return layers


def build_model(
    cfg: VariantConfig,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
    seed: int | None = None,
    streams: bool = True,
) -> keras.Model:
    """[image layers] -> [conv blocks] -> Flatten -> (input layers) -> [Dense -> (normalization) -> activation ->
    (noise, dropout)] per hidden layer -> Dense softmax.

    Every Dense and Conv2D kernel carries the components' regularizer and constraint (``L1L2(l1, l2)`` when
    either lambda is non-zero, ``MaxNorm(c)``). With batch normalization a Dense or conv layer has no bias
    (BatchNormalization's beta takes its place) and the activation follows the normalization. Gaussian noise,
    Gaussian dropout and dropout follow a hidden layer's activation, in that order, when set. A ``cnn`` has one
    block per ``model.conv_filters`` entry. Images without a channel axis get one when a conv block or
    augmentation needs it.

    Common random numbers: a Keras layer draws its seed (initial weights, dropout masks, noise, augmentation)
    from Python's generator when it is made, and with ``seed`` that generator is set from (run seed, name) just
    before each layer or regularizer is made: a Dense or conv layer by its name, a regularizer's layers by its
    component and position. So runs of one seed in different variants start from the same weights in every
    layer they share, whatever layers one of them adds, and each regularizer has its own random stream.

    Args:
        cfg: The resolved variant.
        input_shape: Shape of one example (from the data). Defaults to the dataset's (data.datasets.SHAPES).
        num_classes: Output units (from the data). Defaults to the dataset's.
        seed: The run seed. None: layers draw in order from the generator as the caller left it.
        streams: Dropout and noise draw from the run's own streams (training.branches.KeyedRandom), as fused
            branches do; False: Keras' own layers, for a saved model (they do nothing in inference).
    """
    default_shape, default_classes = SHAPES[cfg.data.dataset]
    input_shape, num_classes = input_shape or default_shape, num_classes or default_classes
    stack, m = _Stack(cfg, seed, streams), cfg.model
    layers: list[keras.layers.Layer] = [keras.Input(shape=input_shape)]
    images = stack.each("image_layers")
    if (m.kind == "cnn" or images) and len(input_shape) == 2:
        layers.append(keras.layers.Reshape((*input_shape, 1), name="channels"))
    layers += images
    if m.kind == "cnn":
        layers += stack.conv_blocks()
    layers.append(keras.layers.Flatten(name="flatten"))
    layers += stack.each("input_layers")
    layers += stack.hidden()
    stack.draws("output")
    layers.append(keras.layers.Dense(num_classes, activation="softmax", name="output", **stack.kwargs("dense_kwargs")))
    return keras.Sequential(layers, name=m.kind)


def make_optimizer(cfg: VariantConfig) -> keras.optimizers.Optimizer:
    """The configured optimizer with its learning rate and options."""
    return components.optimizer(cfg)


def compile_model(model: keras.Model, cfg: VariantConfig) -> keras.Model:
    """Compile with the training loss, accuracy, and the data loss tracked apart from the penalties.

    ``loss`` includes the L1/L2 penalties (and label smoothing); ``data_loss`` is the plain cross-entropy,
    comparable between variants with and without penalties.
    """
    model.compile(
        optimizer=make_optimizer(cfg),
        loss=losses.training_loss(cfg),
        metrics=losses.metrics(cfg),
        steps_per_execution=cfg.train.steps_per_execution,
    )
    return model
