"""TODO."""

from __future__ import annotations

import os
import traceback
from typing import Any

from regbench.data.splits import splits_for
from regbench.execution.jobs import Task
from regbench.execution.outcome import EpochHook, Outcome


def set_thread_env(threads: int) -> None:
    """Limit the framework to ``threads`` CPU threads; must run before TensorFlow/JAX start."""
    if threads > 0:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = "1"
        os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}")
        os.environ["OMP_NUM_THREADS"] = str(threads)


def execute_job(job: list[Task], on_epoch: EpochHook | None = None, splits: Any = None) -> list[Outcome]:
    """Train a job: one run, or several fused into one model (see fused.py). One outcome per task.

    Errors become failed outcomes, never exceptions: the sweep goes on.
    """
    try:
        from regbench.backend.quiet_import import import_keras
        from regbench.config.schema import VariantConfig

        import_keras()
        cfgs = [VariantConfig.model_validate(t.config) for t in job]
        data = splits or splits_for(cfgs[0], job[0].data_dir)
        hooks = [(lambda e, logs, k=t.key: on_epoch(k, e, logs)) if on_epoch else None for t in job]
        if len(job) == 1:
            from regbench.training.alone import train_run

            metrics, history = train_run(cfgs[0], data, job[0].seed, on_epoch=hooks[0])
            return [{"ok": True, "metrics": metrics, "history": history}]
        from regbench.training.fused import train_fused

        results = train_fused(cfgs, [t.seed for t in job], data, on_epoch=hooks)
        return [{"ok": True, "metrics": m, "history": h} for m, h, _ in results]
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - a failed run is recorded and the sweep goes on
        failed = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        return [dict(failed) for _ in job]
