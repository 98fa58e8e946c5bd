"""With JAX, regbench trains from device copies of the data, each group of steps_per_execution steps one
compiled loop that gathers its batches on the device (framework.train_on_device). It must train exactly as
Keras' own loop, one compiled step at a time on batches copied from the host: same batches, same dropout masks,
same weights, plain and fused, with penalties, noise, max-norm, early stopping and a short last batch. Keras
fixes its backend per process, so JAX runs in a subprocess.
"""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import run_in_backend

pytestmark = [
    pytest.mark.subprocess,
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs JAX: pip install 'regbench[jax]'"),
]

SCRIPT = r"""
import json
import numpy as np
from conftest import synthetic_arrays
import regbench.training.batches, regbench.backend.device_arrays
from regbench.config.loading import load_text
from regbench.data.splits import prepare
from regbench.training.driver import train_fused, train_run

# 330 examples, 20 % held out: 264 to train = 8 batches of 32 and one of 8. With steps_per_execution 3 an epoch
# is groups of 3, 3 and 2 full batches (padded with a skipped step), then the short batch, one step alone.
splits = prepare(synthetic_arrays(n_train=330), validation_split=0.2, seed=0)
exp = load_text('''
name: j
model: {hidden_units: [16, 8]}
train: {epochs: 3, batch_size: 32, steps_per_execution: 3, lr_schedule: {kind: exponential, decay_rate: 0.5}}
variants:
  drop: {regularization: {dropout: [0.5, 0.0], l2: 0.001, input_dropout: 0.1, gaussian_noise: [0.1, 0.0]}}
  stop:
    regularization: {l1: 0.001, max_norm: 0.5, label_smoothing: 0.1, gaussian_dropout: 0.2,
                     early_stopping: {patience: 0, min_delta: 10.0}}
  mix: {data: {augmentation: {mixup: 0.4}}, regularization: {label_smoothing: 0.1}}
''')
drop, stop, mix = exp.variants["drop"], exp.variants["stop"], exp.variants["mix"]

def results():
    plain = train_run(drop, splits, 1)
    fused = train_fused([drop, stop], [1, 2], splits)
    mixed = train_run(mix, splits, 3)
    return {
        "plain": [plain.metrics.test_accuracy, plain.metrics.test_data_loss, plain.history,
                  plain.kernels["output"].tolist()],
        "mixup": [mixed.metrics.test_accuracy, mixed.metrics.train_data_loss, mixed.history],
        "fused": [[t.metrics.test_accuracy, t.metrics.test_data_loss, t.history, t.kernels["output"].tolist()]
                  for t in fused],
    }

xla_loop = results()
assert len(regbench.backend.device_arrays._COPIES) == 2, "the device loop did not run"
unmixed = train_run(mix.model_copy(update={"data": mix.data.model_copy(update={"augmentation": None})}), splits, 3)
assert unmixed.history != xla_loop["mixup"][2], "MixUp changed nothing"  # x_train and y_train, once
regbench.training.batches.DEVICE_LOOP = False  # Keras' own loop, batches from the host
keras_loop = results()
print(json.dumps({"xla_loop": xla_loop, "keras_loop": keras_loop}))
"""


def test_xla_loop_trains_exactly_as_keras_loop():
    out = json.loads(run_in_backend(SCRIPT, "jax"))
    got, want = out["xla_loop"], out["keras_loop"]
    assert len(got["plain"][2]) == 3 and len(got["fused"][1][2]) < 3  # 'stop' stopped early
    _close(got, want)


def _close(a, b) -> None:
    """Nested lists and dicts equal; floats to 1e-5 relative."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _close(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _close(x, y)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6)
    else:
        assert a == b
