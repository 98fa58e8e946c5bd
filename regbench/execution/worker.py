"""What runs inside a worker, whichever executor started it: thread limits, then one unit of runs trained (alone,
or fused as branches of one model), each ending as an :class:`Outcome`."""

from __future__ import annotations

import os
from typing import Any

from regbench.data.splits import splits_for
from regbench.execution.outcome import EpochHook, Outcome
from regbench.execution.units import Unit


def set_thread_env(threads: int) -> None:
    """Limit the framework to ``threads`` CPU threads; must run before TensorFlow/JAX start."""
    if threads > 0:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = "1"
        os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}")
        os.environ["OMP_NUM_THREADS"] = str(threads)


def execute_unit(
    unit: Unit, on_epoch: EpochHook | None = None, splits: Any = None, device: dict[str, Any] | None = None
) -> list[Outcome]:
    """Train a unit (training.driver.train_unit): one outcome per task. ``splits``: the data, when the executor
    has them already (Ray's object store); ``device``: where it trains, for the record.

    Errors become failed outcomes, never exceptions: the sweep goes on.
    """
    try:
        from regbench.backend.quiet_import import import_keras

        import_keras()
        from regbench.training.driver import RunSpec, train_unit

        first = unit.tasks[0]
        data = splits or splits_for(first.config, first.data_dir)
        specs = [
            RunSpec(t.config, t.seed, t.run_id, (lambda e, row, k=t.key: on_epoch(k, e, row)) if on_epoch else None)
            for t in unit.tasks
        ]
        checkpoint = _checkpoint(unit, data.identity["sha256"])
        trained = train_unit(specs, data, save=first.save_model, checkpoint=checkpoint, device=device)
        return [Outcome.trained(t.stored()) for t in trained]
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - a failed run is recorded and the sweep goes on
        return [Outcome.failed(exc) for _ in unit.tasks]


def _checkpoint(unit: Unit, data_sha256: str) -> Any:
    """Where this unit keeps its per-epoch checkpoint (training.checkpoint.Target), or None: none asked, or the
    experiment folder is not on this machine (a Ray worker on another node)."""
    if unit.checkpoint is None or not unit.checkpoint.parent.is_dir():
        return None
    from regbench.training.checkpoint import Target, identity

    ident = identity([t.run_id for t in unit.tasks], data_sha256)
    return Target(unit.checkpoint, ident, keep=unit.keep_checkpoint)
