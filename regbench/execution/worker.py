"""What runs inside a worker, whichever executor started it: thread limits, then one group of runs trained
(alone, or fused as branches of one model), each ending as an :class:`Outcome`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from regbench.data.splits import splits_for
from regbench.execution.groups import Task
from regbench.execution.outcome import EpochHook, Outcome


def set_thread_env(threads: int) -> None:
    """Limit the framework to ``threads`` CPU threads; must run before TensorFlow/JAX start."""
    if threads > 0:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = "1"
        os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}")
        os.environ["OMP_NUM_THREADS"] = str(threads)


def execute_group(group: list[Task], on_epoch: EpochHook | None = None, splits: Any = None) -> list[Outcome]:
    """Train a group: one run, or several fused into one model (see training/fused.py). One outcome per task.

    Errors become failed outcomes, never exceptions: the sweep goes on.
    """
    try:
        from regbench.backend.quiet_import import import_keras
        from regbench.config.schema import VariantConfig

        import_keras()
        cfgs = [VariantConfig.model_validate(t.config) for t in group]
        data = splits or splits_for(cfgs[0], group[0].data_dir)
        hooks = [(lambda e, logs, k=t.key: on_epoch(k, e, logs)) if on_epoch else None for t in group]
        save = group[0].save_model
        checkpoint = _checkpoint(group, data.identity["sha256"])
        if len(group) == 1:
            from regbench.training.alone import train_run

            saved: dict = {}
            metrics, history = train_run(
                cfgs[0], data, group[0].seed, on_epoch=hooks[0], save=save, model_out=saved, checkpoint=checkpoint
            )
            return [Outcome.trained({**metrics, "data": data.identity}, history, saved.get("model"))]
        from regbench.training.fused import train_fused

        models: list = []
        seeds = [t.seed for t in group]
        results = train_fused(cfgs, seeds, data, on_epoch=hooks, save=save, models_out=models, checkpoint=checkpoint)
        models = models or [None] * len(group)
        return [
            Outcome.trained({**m, "data": data.identity}, h, model)
            for (m, h, _), model in zip(results, models, strict=True)
        ]
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - a failed run is recorded and the sweep goes on
        return [Outcome.failed(exc) for _ in group]


def _checkpoint(group: list[Task], data_sha256: str) -> Any:
    """Where this group keeps its per-epoch checkpoint (training.checkpoint.Target), or None: none asked, or the
    experiment folder is not on this machine (a Ray worker on another node)."""
    path = group[0].checkpoint
    if path is None or not Path(path).parent.is_dir():
        return None
    from regbench.training.checkpoint import Target, identity

    ident = identity([t.run_id for t in group], data_sha256)
    return Target(Path(path), ident, keep=group[0].keep_checkpoint)
