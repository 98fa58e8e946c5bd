"""Where runs execute: in this process, in N local processes, or on a Ray cluster.

Every executor takes planned runs and yields ``(task, outcome)`` as runs end, in completion order. The
driver (experiment.py) writes the run folders, so the on-disk format is the same whatever ran the work.
An outcome is ``{"ok": True, "metrics": ..., "history": ...}`` or ``{"ok": False, "error": ..., ...}``.
"""

from __future__ import annotations

import os
import queue
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from regbench.errors import RegbenchError

Outcome = dict[str, Any]
EpochHook = Callable[[str, int, dict[str, float]], None]


@dataclass
class Task:
    """One run to execute: everything a worker needs, all picklable."""

    key: str  # "<variant>/seed-<seed>"
    variant: str
    seed: int
    config: dict[str, Any]  # VariantConfig as JSON
    data_dir: str | None
    threads: int = 0  # 0: leave the framework's default


def set_thread_env(threads: int) -> None:
    """Limit the framework to ``threads`` CPU threads; must run before TensorFlow/JAX start."""
    if threads > 0:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = "1"
        os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}")
        os.environ["OMP_NUM_THREADS"] = str(threads)


_SPLITS: dict[tuple, Any] = {}


def splits_for(config: Any, data_dir: str | None):
    """Load and prepare a variant's data once per process."""
    from regbench.data import load_arrays, prepare

    d = config.data
    key = (d.dataset, d.dir or data_dir, d.validation_split, d.train_subset, d.label_noise, d.seed)
    if key not in _SPLITS:
        arrays, source = load_arrays(d.dataset, d.dir or data_dir)
        _SPLITS[key] = prepare(
            arrays,
            validation_split=d.validation_split,
            train_subset=d.train_subset,
            label_noise=d.label_noise,
            seed=d.seed,
            source=source,
        )
    return _SPLITS[key]


def execute(task: Task, on_epoch: Callable[[int, dict[str, float]], None] | None = None, splits: Any = None) -> Outcome:
    """Train one run and return its outcome. Errors become a failed outcome, never an exception."""
    try:
        from regbench.config import VariantConfig
        from regbench.framework import import_keras

        import_keras()
        from regbench.training import train_run

        cfg = VariantConfig.model_validate(task.config)
        metrics, history = train_run(cfg, splits or splits_for(cfg, task.data_dir), task.seed, on_epoch=on_epoch)
        return {"ok": True, "metrics": metrics, "history": history}
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - a failed run is recorded and the sweep goes on
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}


# ---------------------------------------------------------------------------------------------------------


def run_serial(tasks: list[Task], on_start, on_epoch: EpochHook) -> Iterator[tuple[Task, Outcome]]:
    """In this process, one run after another."""
    for task in tasks:
        on_start(task)
        yield task, execute(task, on_epoch=lambda e, logs, k=task.key: on_epoch(k, e, logs))


_QUEUE = None


def _init_worker(events, threads: int) -> None:
    global _QUEUE
    _QUEUE = events
    set_thread_env(threads)
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops the pool


def _execute_in_worker(task: Task) -> Outcome:
    _QUEUE.put(("start", task.key, 0, {}))
    return execute(task, on_epoch=lambda e, logs: _QUEUE.put(("epoch", task.key, e, logs)))


def run_processes(tasks: list[Task], jobs: int, on_start, on_epoch: EpochHook) -> Iterator[tuple[Task, Outcome]]:
    """``jobs`` worker processes, each limited to its share of the cores."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")  # no fork after a framework may have started threads
    events = ctx.Queue()
    threads = max(1, (os.cpu_count() or 1) // jobs)
    by_key = {t.key: t for t in tasks}
    stop = threading.Event()

    def pump() -> None:  # worker progress messages -> the display, on a thread of the driver
        while not stop.is_set():
            try:
                kind, key, epoch, logs = events.get(timeout=0.1)
            except queue.Empty:
                continue
            except (EOFError, OSError):
                return
            if kind == "start":
                on_start(by_key[key])
            else:
                on_epoch(key, epoch, logs)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker, initargs=(events, threads))
    try:
        pending = {pool.submit(_execute_in_worker, t): t for t in tasks}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                task = pending.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 - e.g. a worker killed by the OS
                    outcome = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": ""}
                yield task, outcome
    finally:
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()  # Ctrl-C or an error in the driver: stop the runs in flight now
        pool.shutdown(wait=True, cancel_futures=True)
        stop.set()
        reader.join(timeout=1)


def run_ray(tasks: list[Task], address: str | None, on_start, on_epoch: EpochHook) -> Iterator[tuple[Task, Outcome]]:
    """Each run as a Ray task (one CPU each). Data are loaded once here and shared through Ray's object store,
    so workers on other machines need no copy of the dataset."""
    try:
        import ray
    except ImportError:
        raise RegbenchError(
            "--executor ray needs Ray: pip install 'regbench[ray]' (or pip install ray)", exit_code=2
        ) from None
    from regbench.config import VariantConfig

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        refs: dict[tuple, Any] = {}
        remote = ray.remote(num_cpus=1)(_execute_ray)
        pending = {}
        for task in tasks:
            cfg = VariantConfig.model_validate(task.config)
            d = cfg.data
            key = (d.dataset, d.dir or task.data_dir, d.validation_split, d.train_subset, d.label_noise, d.seed)
            if key not in refs:
                refs[key] = ray.put(splits_for(cfg, task.data_dir))
            pending[remote.remote(task, refs[key])] = task
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                task = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a lost worker or node
                    outcome = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": ""}
                on_start(task)  # Ray streams no epochs back: the display shows each run as it returns
                yield task, outcome
    finally:
        if started_here:
            ray.shutdown()


def _execute_ray(task: Task, splits: Any) -> Outcome:
    set_thread_env(1)
    return execute(task, splits=splits)
