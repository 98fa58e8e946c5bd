"""TODO."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from regbench.data.splits import data_key, splits_for
from regbench.errors import RegbenchError
from regbench.execution.jobs import Task
from regbench.execution.outcome import EpochHook, Outcome
from regbench.execution.worker import execute_job, set_thread_env


def run_ray(
    jobs: list[list[Task]], address: str | None, on_start, on_epoch: EpochHook
) -> Iterator[tuple[Task, Outcome]]:
    """Each job as a Ray task (one CPU each). Data are loaded once here and shared through Ray's object store,
    so workers on other machines need no copy of the dataset."""
    try:
        import ray
    except ImportError:
        raise RegbenchError(
            "--executor ray needs Ray: pip install 'regbench[ray]' (or pip install ray)", exit_code=2
        ) from None
    from regbench.config.schema import VariantConfig

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        refs: dict[tuple, Any] = {}
        remote = ray.remote(num_cpus=1)(_execute_ray)
        pending = {}
        for job in jobs:
            cfg = VariantConfig.model_validate(job[0].config)
            key = data_key(cfg, job[0].data_dir)
            if key not in refs:
                refs[key] = ray.put(splits_for(cfg, job[0].data_dir))
            pending[remote.remote(job, refs[key])] = job
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    outcomes = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a lost worker or node
                    outcomes = [{"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": ""}] * len(job)
                for task in job:
                    on_start(task)  # Ray streams no epochs back: the display shows each run as it returns
                yield from zip(job, outcomes, strict=True)
    finally:
        if started_here:
            ray.shutdown()


def _execute_ray(job: list[Task], splits: Any) -> list[Outcome]:
    set_thread_env(1)
    return execute_job(job, splits=splits)
