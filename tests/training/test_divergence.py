"""The issue's divergence study: SGD at a learning rate of 1000 blows a small MLP up. TensorFlow's cross-entropy
then reached 5e9 and the run was marked diverged; JAX's clipped cross-entropy saturated at 14.2 and the run
"finished" at 8 % accuracy. Now both backends, alone and fused, mark it diverged."""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import run_in_backend

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]

SCRIPT = r"""
import json
from conftest import synthetic_arrays
from regbench.backend.quiet_import import import_keras
import_keras()
from regbench.config.loading import load_text
from regbench.data.splits import prepare
from regbench.training.driver import train_fused, train_run

splits = prepare(synthetic_arrays(n_train=1000), validation_split=0.1, seed=0)
exp = load_text('''
name: blowup
model: {hidden_units: [32]}
train: {optimizer: sgd, learning_rate: 1000.0, epochs: 2}
variants:
  blowup: {}
  calm: {train: {learning_rate: 0.01}, regularization: {}}
''')
blowup = exp.variants["blowup"]
alone = train_run(blowup, splits, 0).metrics
fused = [t.metrics for t in train_fused([blowup, blowup], [0, 1], splits)]
calm = train_run(exp.variants["calm"], splits, 0).metrics
print(json.dumps({"alone": alone.status.value, "fused": [m.status.value for m in fused], "calm": calm.status.value}))
"""


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_blown_up_run_is_diverged_on_every_backend_alone_and_fused(backend: str):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    statuses = json.loads(run_in_backend(SCRIPT, backend))
    assert statuses == {"alone": "diverged", "fused": ["diverged", "diverged"], "calm": "finished"}, statuses
