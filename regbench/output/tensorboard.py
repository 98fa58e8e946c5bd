"""TensorBoard logs of finished runs (``run --tensorboard`` or ``output.tensorboard: true``).

Each run folder gets ``tensorboard/`` in the layout of Keras' TensorBoard callback: ``train/`` and
``validation/`` with ``epoch_accuracy``, ``epoch_data_loss``, ``epoch_loss`` (and ``epoch_learning_rate``) per
epoch, so TensorBoard overlays the two. The root holds the run's hyperparameters (its flattened config, for the
HParams dashboard) and its test results. They are written from the run's history after it finishes, by the
process that writes run folders, so fused branches and runs from worker processes or Ray get the same logs.
Writing needs TensorFlow's ``tf.summary`` and the ``tensorboard`` package (``pip install 'regbench[tensorboard]'``).

    tensorboard --logdir outputs/
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from regbench.errors import RegbenchError
from regbench.store.identity import comparable_config
from regbench.store.layout import TENSORBOARD
from regbench.store.records import TrainedRun

TRAIN_KEYS = {"accuracy": "epoch_accuracy", "data_loss": "epoch_data_loss", "loss": "epoch_loss"}


RESULTS = ("test_accuracy", "test_data_loss", "generalization_gap", "best_epoch")


def check_available() -> None:
    """Raise a one-line error (exit 2) before anything runs when the logs could not be written."""
    missing = [m for m in ("tensorflow", "tensorboard") if importlib.util.find_spec(m) is None]
    if missing:
        raise RegbenchError(
            f"--tensorboard needs {' and '.join(missing)}: pip install 'regbench[tensorboard]' (and tensorflow)",
            exit_code=2,
        )


def _hparam(value: Any) -> bool | int | float | str:
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value)


def write_run_logs(folder: Path, run_id: str, config: dict[str, Any], run: TrainedRun) -> Path:
    """Write ``folder/tensorboard`` for one finished run; returns that folder."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    logdir, history = folder / TENSORBOARD, run.history
    writers = {part: tf.summary.create_file_writer(str(logdir / part)) for part in ("train", "validation")}
    for row in history:
        step = int(row["epoch"])
        for part, prefix in (("train", ""), ("validation", "val_")):
            with writers[part].as_default():
                for key, tag in TRAIN_KEYS.items():
                    if prefix + key in row:
                        tf.summary.scalar(tag, row[prefix + key], step=step)
                if part == "train" and "lr" in row:
                    tf.summary.scalar("epoch_learning_rate", row["lr"], step=step)
    root = tf.summary.create_file_writer(str(logdir))
    with root.as_default():
        hp.hparams({k: _hparam(v) for k, v in comparable_config(config).items()}, trial_id=run_id)
        last = int(history[-1]["epoch"]) if history else 0
        for key in RESULTS:
            value = getattr(run.metrics, key)
            if isinstance(value, (int, float)):
                tf.summary.scalar(key, float(value), step=last)
    for writer in (*writers.values(), root):
        writer.flush()
        writer.close()
    return logdir
