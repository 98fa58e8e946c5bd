"""Minimal reproduction: with a seed set, Keras 3's fit(shuffle=True) on NumPy arrays repeats one batch order in
every epoch on the TensorFlow backend, while the JAX backend draws a new one each epoch.

Public API only: a model records the examples of each training step (run eagerly, so it can look at them).
Run it on each backend:

    KERAS_BACKEND=tensorflow python bench/tf_shuffle_repeats.py
    KERAS_BACKEND=jax python bench/tf_shuffle_repeats.py

Seen with Keras 3.15.1: TensorFlow 2.21 prints "the same order in every epoch: True", JAX 0.10.2 "False".
TensorFlow's tracker has reports of this kind (tensorflow/tensorflow#29558, #35682). regbench does not rely on
Keras' shuffle: it draws each epoch's order itself (regbench/batches.py).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

seen: list[list[int]] = []


class Recorder(keras.Sequential):
    def train_step(self, *args, **kwargs):
        data = args[-1]  # JAX passes (state, data); TensorFlow passes data
        seen.append([int(v) for v in np.asarray(data[0])[:, 0]])
        return super().train_step(*args, **kwargs)


keras.utils.set_random_seed(0)
x = np.arange(12, dtype="float32").reshape(-1, 1)  # example i is the number i
model = Recorder([keras.Input((1,)), keras.layers.Dense(1)])
model.compile("sgd", "mse", run_eagerly=True)
model.fit(x, x, batch_size=4, epochs=3, shuffle=True, verbose=0)
epochs = [sum(seen[i : i + 3], []) for i in range(0, 9, 3)]
for e, order in enumerate(epochs, start=1):
    print(f"{keras.backend.backend()} epoch {e}: {order}")
print("the same order in every epoch:", all(order == epochs[0] for order in epochs))
