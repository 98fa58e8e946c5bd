"""The Ray executor: each unit of runs as a Ray task, on a cluster or a local Ray started for the study."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from regbench.data.splits import data_key, splits_for
from regbench.errors import RegbenchError
from regbench.execution.executor import Capacity, ExecutorConfig
from regbench.execution.outcome import EpochHook, Outcome
from regbench.execution.units import Task, Unit
from regbench.execution.worker import execute_unit, set_thread_env


class RayCluster:
    """Each unit as a Ray task: one CPU, and on a cluster with GPUs one GPU (``gpus_per_task``), so that each
    fused unit trains on a device of its own and every device gets a unit. Data are loaded once by the driver
    and shared through Ray's object store, so workers on other machines need no copy of the dataset."""

    def __init__(self, config: ExecutorConfig):
        self.address, self.jobs, self.threads = config.ray_address, config.jobs, config.threads
        self.gpus_per_task = config.gpus_per_task
        self.started_here = False

    def setup(self) -> Capacity:
        """Before anything is written: Ray is installed, a local cluster would start with authentication, and
        Ray is up (its resources decide how the runs are split into units)."""
        check_ray(local=self.address is None)
        import ray

        if not ray.is_initialized():
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
            except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; each is one line for the user
                where = f"--ray-address {self.address}" if self.address else "--executor ray"
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise RegbenchError(f"{where}: Ray did not start: {type(exc).__name__}: {first}", exit_code=2) from None
            self.started_here = True
        if self.gpus_per_task is None:
            self.gpus_per_task = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
        # the driver's copy of the data is what it puts into the object store
        return Capacity(parallel=self._parallel(), device_memory=self._device_memory())

    def _parallel(self) -> int:
        """With GPUs, as many units as the cluster's GPUs hold at once; on CPUs, --jobs."""
        import ray

        if not self.gpus_per_task:
            return self.jobs
        return max(1, int(ray.cluster_resources().get("GPU", 0) // self.gpus_per_task))

    def _device_memory(self) -> int | None:
        """With GPUs: the memory of one (asked of a GPU node by a task that claims one), shared by the units a
        GPU holds at once; None when no GPU is claimed or its memory cannot be read (then host memory)."""
        import ray

        if not self.gpus_per_task:
            return None
        probe = ray.remote(num_cpus=0, num_gpus=self.gpus_per_task)(_gpu_memory)
        try:
            total = ray.get(probe.remote(), timeout=120)
        except Exception:  # noqa: BLE001 - no answer: fall back to host memory, as without GPUs
            return None
        return None if total is None else int(total * min(1.0, self.gpus_per_task))

    def launch(self, units: list[Unit], on_start, on_epoch: EpochHook) -> Iterator[tuple[Task, Outcome]]:
        return _run_ray(units, on_start, self.gpus_per_task or 0.0, self.started_here, self.threads)


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


def _run_ray(
    units: list[Unit], on_start, gpus: float, started_here: bool, threads: int = 1
) -> Iterator[tuple[Task, Outcome]]:
    import ray

    try:
        refs: dict[tuple, Any] = {}
        backend = os.environ.get("KERAS_BACKEND", "")
        # A cluster that was running before the study has workers with their own environment: every task carries
        # the driver's backend choice (and the settings a run depends on) in its runtime environment.
        carried = {k: os.environ[k] for k in CARRIED if k in os.environ}
        remote = ray.remote(num_cpus=1, num_gpus=gpus, runtime_env={"env_vars": carried})(_execute_ray)
        pending = {}
        for unit in units:
            first = unit.tasks[0]
            key = data_key(first.config, first.data_dir)
            if key not in refs:
                refs[key] = ray.put(splits_for(first.config, first.data_dir))
            pending[remote.remote(unit, refs[key], backend, threads)] = unit
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                unit = pending.pop(ref)
                try:
                    outcomes = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a lost worker or node
                    outcomes = [Outcome.failed(exc, with_traceback=False) for _ in unit.tasks]
                for task in unit.tasks:
                    on_start(task)  # Ray streams no epochs back: the display shows each run as it returns
                yield from zip(unit.tasks, outcomes, strict=True)
    finally:
        if started_here:
            ray.shutdown()


CARRIED = ("KERAS_BACKEND", "REGBENCH_COMPILE_CACHE", "TF_CPP_MIN_LOG_LEVEL")


def _execute_ray(unit: Unit, splits: Any, backend: str = "", threads: int = 1) -> list[Outcome]:
    set_thread_env(threads)  # --threads, as locally (before the framework starts in this worker)
    if backend:
        from regbench.backend.quiet_import import import_keras

        actual = import_keras().backend.backend()
        if actual != backend:  # e.g. Keras was imported in this worker before the task's environment applied
            error = RegbenchError(
                f"this Ray worker's Keras runs on {actual}, the study on {backend}; the run was not trained on "
                f"another backend (start the cluster's workers with KERAS_BACKEND={backend})"
            )
            return [Outcome.failed(error, with_traceback=False) for _ in unit.tasks]
    return execute_unit(unit, splits=splits, device=_device())


def _gpu_memory() -> int | None:
    """Bytes of memory of the first GPU this task was given (nvidia-smi), or None (no NVIDIA GPU or no tool)."""
    import subprocess

    first = (os.environ.get("CUDA_VISIBLE_DEVICES") or "0").split(",")[0]

    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits", "-i", first],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return int(float(done.stdout.strip().splitlines()[0])) * 2**20 if done.returncode == 0 else None
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def _device() -> dict[str, Any]:
    """Where a Ray task ran: its node, the GPUs Ray gave it, and what CUDA_VISIBLE_DEVICES says."""
    import ray

    context = ray.get_runtime_context()
    return {
        "ray_node": context.get_node_id(),
        "ray_gpu_ids": [str(i) for i in context.get_accelerator_ids().get("GPU", [])],
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
