"""Executors on this machine: in this process, or in a pool of worker processes."""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Iterator

from regbench.execution.executor import Capacity, ExecutorConfig
from regbench.execution.internals import terminate_pool_workers
from regbench.execution.outcome import EpochHook, Outcome
from regbench.execution.units import Task, Unit
from regbench.execution.worker import execute_unit, set_thread_env


class InProcess:
    """In this process, one unit after another."""

    def __init__(self, config: ExecutorConfig | None = None):
        self.threads = (config or ExecutorConfig()).threads

    def setup(self) -> Capacity:
        from regbench.backend.quiet_import import import_keras

        set_thread_env(self.threads)  # only takes effect if the framework has not started yet
        import_keras()
        return Capacity(parallel=1)  # the runs train on the driver's copy of the data

    def launch(self, units: list[Unit], on_start, on_epoch: EpochHook) -> Iterator[tuple[Task, Outcome]]:
        for unit in units:
            for task in unit.tasks:
                on_start(task)
            yield from zip(unit.tasks, execute_unit(unit, on_epoch), strict=True)


_QUEUE = None


def _init_worker(events, threads: int) -> None:
    global _QUEUE
    _QUEUE = events
    set_thread_env(threads)
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops the pool
    _die_with_parent()


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this worker when the driver dies (even by SIGKILL), so that no orphan
    keeps training, holding memory and cores, after the driver is gone."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
        except OSError:
            pass
        if os.getppid() == 1:  # the driver died before prctl took effect
            os._exit(1)


def _execute_in_worker(unit: Unit) -> list[Outcome]:
    for task in unit.tasks:
        _QUEUE.put(("start", task.key, 0, {}))
    return execute_unit(unit, on_epoch=lambda key, e, row: _QUEUE.put(("epoch", key, e, row)))


class ProcessPool:
    """``jobs`` processes, each limited to ``threads`` CPU threads (0: its share of the cores)."""

    def __init__(self, config: ExecutorConfig):
        self.workers, self.threads = config.jobs, config.threads

    def setup(self) -> Capacity:
        return Capacity(parallel=self.workers, loads_own_data=True)  # each worker starts its framework

    def launch(self, units: list[Unit], on_start, on_epoch: EpochHook) -> Iterator[tuple[Task, Outcome]]:
        return _run_pool(units, self.workers, on_start, on_epoch, self.threads)


def _run_pool(
    units: list[Unit], workers: int, on_start, on_epoch: EpochHook, threads: int
) -> Iterator[tuple[Task, Outcome]]:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")  # no fork after a framework may have started threads
    events = ctx.Queue()
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    by_key = {t.key: t for unit in units for t in unit.tasks}
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
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(events, threads)
    )
    try:
        pending = {pool.submit(_execute_in_worker, unit): unit for unit in units}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                unit = pending.pop(future)
                try:
                    outcomes = future.result()
                except Exception as exc:  # noqa: BLE001 - e.g. a worker killed by the OS
                    outcomes = [Outcome.failed(exc, with_traceback=False) for _ in unit.tasks]
                yield from zip(unit.tasks, outcomes, strict=True)
    finally:
        terminate_pool_workers(pool)  # Ctrl-C or an error in the driver: stop the runs in flight now
        pool.shutdown(wait=True, cancel_futures=True)
        stop.set()
        reader.join(timeout=1)
