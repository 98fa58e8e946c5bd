"""The Ray executor: each group of runs as a Ray task, on a cluster or a local Ray started for the study."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from regbench.data.splits import data_key, splits_for
from regbench.errors import RegbenchError
from regbench.execution.groups import Task
from regbench.execution.outcome import EpochHook, Outcome
from regbench.execution.worker import execute_group, set_thread_env


class RayCluster:
    """Each group as a Ray task (one CPU each). Data are loaded once by the driver and shared through Ray's
    object store, so workers on other machines need no copy of the dataset."""

    def __init__(self, address: str | None = None):
        self.address = address

    def start(self) -> None:
        """Before anything is written: Ray is installed, and a local cluster would start with authentication."""
        check_ray(local=self.address is None)

    def release_driver_data(self) -> None:
        pass  # the driver's copy is what it puts into the object store

    def launch(self, groups: list[list[Task]], on_start, on_epoch: EpochHook) -> Iterator[tuple[Task, Outcome]]:
        return _run_ray(groups, self.address, on_start)


# The first Ray whose local clusters start with token authentication on: before it, a local Ray's services
# listened on every interface and took any caller's jobs. (They still listen on every interface.)
MIN_LOCAL_RAY = (2, 59)


def check_ray(local: bool) -> None:
    """Raise RegbenchError (exit 2) when Ray is missing, or too old to start a local cluster with authentication."""
    try:
        import ray
    except ImportError:
        raise RegbenchError(
            "--executor ray needs Ray: pip install 'regbench[ray]' (or pip install ray)", exit_code=2
        ) from None
    version = tuple(int(p) for p in ray.__version__.split(".")[:2] if p.isdigit())
    if local and version < MIN_LOCAL_RAY:
        raise RegbenchError(
            f"--executor ray: Ray {ray.__version__} starts a local cluster without authentication, open to anyone "
            f"who can reach this machine; pip install 'ray>={MIN_LOCAL_RAY[0]}.{MIN_LOCAL_RAY[1]}', or pass "
            "--ray-address of a cluster you secured",
            exit_code=2,
        )


def _run_ray(groups: list[list[Task]], address: str | None, on_start) -> Iterator[tuple[Task, Outcome]]:
    import ray

    from regbench.config.schema import VariantConfig

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        refs: dict[tuple, Any] = {}
        backend = os.environ.get("KERAS_BACKEND", "")
        # A cluster that was running before the study has workers with their own environment: every task carries
        # the driver's backend choice (and the settings a run depends on) in its runtime environment.
        carried = {k: os.environ[k] for k in CARRIED if k in os.environ}
        remote = ray.remote(num_cpus=1, runtime_env={"env_vars": carried})(_execute_ray)
        pending = {}
        for group in groups:
            cfg = VariantConfig.model_validate(group[0].config)
            key = data_key(cfg, group[0].data_dir)
            if key not in refs:
                refs[key] = ray.put(splits_for(cfg, group[0].data_dir))
            pending[remote.remote(group, refs[key], backend)] = group
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                group = pending.pop(ref)
                try:
                    outcomes = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a lost worker or node
                    outcomes = [Outcome.failed(exc, with_traceback=False) for _ in group]
                for task in group:
                    on_start(task)  # Ray streams no epochs back: the display shows each run as it returns
                yield from zip(group, outcomes, strict=True)
    finally:
        if started_here:
            ray.shutdown()


CARRIED = ("KERAS_BACKEND", "REGBENCH_COMPILE_CACHE", "TF_CPP_MIN_LOG_LEVEL")


def _execute_ray(group: list[Task], splits: Any, backend: str = "") -> list[Outcome]:
    set_thread_env(1)
    if backend:
        from regbench.backend.quiet_import import import_keras

        actual = import_keras().backend.backend()
        if actual != backend:  # e.g. Keras was imported in this worker before the task's environment applied
            error = RegbenchError(
                f"this Ray worker's Keras runs on {actual}, the study on {backend}; the run was not trained on "
                f"another backend (start the cluster's workers with KERAS_BACKEND={backend})"
            )
            return [Outcome.failed(error, with_traceback=False) for _ in group]
    return execute_group(group, splits=splits)
