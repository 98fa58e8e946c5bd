"""Per-epoch checkpoints: a unit of training (a run alone, or fused runs) interrupted mid-training continues from
its last finished epoch and ends exactly as if it had never stopped (bitwise on the CPU).

After every epoch that training goes on from, one ``.npz`` file (written whole, then renamed over the last one)
holds everything the next epoch depends on: every model variable (weights, batch-norm statistics, per-branch
values, the dropout layers' random-number states), every optimizer variable (Adam's moments, the step count,
the learning rate), and the state of each run's watch (training.monitor.RunWatch: the history so far, early
stopping's best value, patience and best weights, the best weights kept for ``save_model: best``, the weights a
fused branch stopped with), each part under its own ``state_key``.
The batch order needs nothing: it is drawn from (seed, epoch) alone (training.batches).

A checkpoint names what it belongs to (``identity``: the runs' ids in branch order, the data's sha256, the
backend and versions); one that does not match, or cannot be read, is ignored with a warning and the runs
train from the first epoch.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import keras
import numpy as np

from regbench.backend.runtime import framework
from regbench.store import checkpoints

FORMAT = 2  # 2: the state of each run's watch (training.monitor.RunWatch), alone and fused alike


class Stateful(Protocol):
    """A part of a unit whose state a checkpoint keeps, under the name the part gives it (``state_key``)."""

    state_key: str

    def state(self) -> Any: ...

    def restore(self, state: Any) -> None: ...


def pack(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """``value`` as JSON, its numpy arrays moved into ``arrays`` (replaced by ``{"array": name}``)."""
    if isinstance(value, np.ndarray) or (hasattr(value, "shape") and hasattr(value, "dtype")):
        name = f"a{len(arrays)}"
        arrays[name] = np.asarray(value)
        return {"array": name}
    if isinstance(value, dict):
        return {"dict": [[k, pack(v, arrays)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [pack(v, arrays) for v in value]
    return value


def unpack(value: Any, arrays: Any) -> Any:
    """The inverse of :func:`pack` (tuples come back as lists)."""
    if isinstance(value, dict):
        if "array" in value:
            return arrays[value["array"]]
        return {k: unpack(v, arrays) for k, v in value["dict"]}
    if isinstance(value, list):
        return [unpack(v, arrays) for v in value]
    return value


def identity(run_ids: list[str], data_sha256: str) -> dict[str, Any]:
    """What a checkpoint must match to be continued: the runs (in branch order), the data and the runtime."""
    return {"format": FORMAT, "runs": list(run_ids), "data": data_sha256, "runtime": framework()}


def _variables(model: keras.Model) -> list:
    return [*model.variables, *model.optimizer.variables]


@dataclass(frozen=True)
class Resumed:
    """Where a unit continues: after ``epochs_done`` epochs, ``elapsed`` training seconds spent, and whether its
    training had ended there (a kept checkpoint: the unit only has to be evaluated)."""

    epochs_done: int = 0
    elapsed: float = 0.0
    finished: bool = False

    def initial_epoch(self, epochs: int) -> int:
        """``fit``'s initial_epoch: the next epoch to train, or ``epochs`` (none) when training had ended."""
        return epochs if self.finished else self.epochs_done


def save(path: Path, ident: dict[str, Any], at: Resumed, model: keras.Model, parts: list[Stateful]) -> None:
    """Write the checkpoint of ``model`` (and its optimizer) at ``at`` (store.checkpoints.write: whole or not at
    all)."""
    arrays = {f"v{i}": np.asarray(keras.ops.convert_to_numpy(v)) for i, v in enumerate(_variables(model))}
    meta = {"identity": ident, "epochs_done": at.epochs_done, "elapsed_s": at.elapsed, "finished": at.finished}
    meta["variables"] = len(arrays)
    meta["parts"] = pack({part.state_key: part.state() for part in parts}, arrays)
    checkpoints.write(path, arrays, meta)


def _warn(path: Path, why: str) -> None:
    print(f"regbench: checkpoint {path} {why}; training from the first epoch", file=sys.stderr)


def restore(path: Path, ident: dict[str, Any], model: keras.Model, parts: list[Stateful]) -> Resumed:
    """Continue from the checkpoint at ``path`` when there is one for ``ident``: set the model's and optimizer's
    variables and each part's state, and say where training continues (``Resumed()``: from the start). ``model``
    must be compiled; its optimizer is built here if it is not yet."""
    if path.is_symlink() or not path.is_file():
        return Resumed()
    first = checkpoints.read_meta(path)  # its identity before any array is decompressed
    if first is None:
        _warn(path, "cannot be read")
        return Resumed()
    if first.get("identity") != ident:
        _warn(path, "belongs to other runs, data or versions")
        return Resumed()
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model_bytes = sum(np.prod(v.shape, dtype=np.int64) * 8 for v in _variables(model))
    try:  # the model's variables, and the weights its parts keep (best, stopped), a few times over at most
        meta, arrays = checkpoints.read(path, most_bytes=int(model_bytes) * 8 + checkpoints.META_BYTES)
    except Exception as exc:  # noqa: BLE001 - a damaged file is ignored, never trusted
        _warn(path, f"cannot be read ({type(exc).__name__})")
        return Resumed()
    if not isinstance(meta, dict) or meta.get("identity") != ident:
        _warn(path, "belongs to other runs, data or versions")
        return Resumed()
    try:
        at = Resumed(int(meta["epochs_done"]), float(meta["elapsed_s"]), bool(meta.get("finished")))
        states = unpack(meta["parts"], arrays)
        missing = {part.state_key for part in parts} - set(states)
    except Exception as exc:  # noqa: BLE001 - a malformed record is ignored, never trusted
        _warn(path, f"is damaged ({type(exc).__name__})")
        return Resumed()
    variables = _variables(model)
    values = [arrays.get(f"v{i}") for i in range(len(variables))]
    if (
        missing
        or meta.get("variables") != len(variables)
        or any(a is None or tuple(a.shape) != tuple(v.shape) for a, v in zip(values, variables, strict=True))
    ):
        _warn(path, "does not fit this model")
        return Resumed()
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)
    try:
        for part in parts:
            part.restore(states[part.state_key])
    except Exception as exc:  # the model already holds the checkpoint's weights: this run cannot go on
        raise ValueError(
            f"checkpoint {path} is damaged ({type(exc).__name__}: {exc}); delete it, and --resume trains these runs "
            "from the first epoch"
        ) from None
    return at


COST = 0.1  # the share of training time checkpoints may take at most
clock = time.perf_counter


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves a checkpoint after each epoch that training goes on from: not after the last epoch, nor when the
    run is stopping (early stopping, divergence), which a resumed run reaches again by itself, unless ``keep``
    (output.keep_checkpoint): then the end of training too. Put it after every callback whose state it keeps.

    Writing costs at most ``COST`` of the time: after a write that took ``d`` seconds, the next comes once
    ``d * (1 / COST - 1)`` seconds have passed (every epoch, unless epochs are short and the model is large:
    256 fused branches of a fast GPU epoch); a resume then continues from an earlier epoch, to the same end."""

    def __init__(self, target: Target, parts: list[Stateful], elapsed_before: float = 0.0):
        super().__init__()
        self.target, self.parts, self.elapsed_before = target, parts, elapsed_before
        self.started = clock()
        self.next_write = self.started
        self.failed = False

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        ending = self.model.stop_training or epoch + 1 >= self.params["epochs"]
        now = clock()
        if self.failed or (ending and not self.target.keep) or (now < self.next_write and not ending):
            return
        at = Resumed(epoch + 1, self.elapsed_before + now - self.started, ending)
        try:
            save(self.target.path, self.target.identity, at, self.model, self.parts)
        except OSError as exc:  # a full disk: training goes on without checkpoints
            why = exc.strerror or exc
            path = self.target.path
            print(f"regbench: cannot write checkpoint {path} ({why}); training goes on without", file=sys.stderr)
            self.failed = True
        done = clock()
        self.next_write = done + (done - now) * (1 / COST - 1)


@dataclass(frozen=True)
class Target:
    """Where one training unit (a run alone or fused runs) keeps its checkpoint, and what it must match."""

    path: Path
    identity: dict[str, Any]
    keep: bool = False  # output.keep_checkpoint

    def restore(self, model: keras.Model, parts: list[Stateful]) -> Resumed:
        return restore(self.path, self.identity, model, parts)

    def callback(self, parts: list[Stateful], resumed: Resumed) -> EpochCheckpoint:
        return EpochCheckpoint(self, parts, resumed.elapsed)
