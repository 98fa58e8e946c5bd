"""Executors on this machine: in this process, or in a pool of worker processes."""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Iterator

from regbench.execution.groups import Task
from regbench.execution.outcome import EpochHook, Outcome
from regbench.execution.worker import execute_group, set_thread_env


class InProcess:
    """In this process, one group after another."""

    def __init__(self, threads: int = 1):
        self.threads = threads

    def start(self) -> None:
        from regbench.backend.quiet_import import import_keras

        set_thread_env(self.threads)  # only takes effect if the framework has not started yet
        import_keras()

    def release_driver_data(self) -> None:
        pass  # the runs train on the driver's copy

    def parallel(self) -> int:
        return 1

    def device_memory(self) -> int | None:
        return None

    def launch(self, groups: list[list[Task]], on_start, on_epoch: EpochHook) -> Iterator[tuple[Task, Outcome]]:
        for group in groups:
            for task in group:
                on_start(task)
            yield from zip(group, execute_group(group, on_epoch), strict=True)


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


def _execute_in_worker(group: list[Task]) -> list[Outcome]:
    for task in group:
        _QUEUE.put(("start", task.key, 0, {}))
    return execute_group(group, on_epoch=lambda key, e, logs: _QUEUE.put(("epoch", key, e, logs)))


class ProcessPool:
    """``workers`` processes, each limited to ``threads`` CPU threads (0: its share of the cores)."""

    def __init__(self, workers: int, threads: int = 1):
        self.workers, self.threads = workers, threads

    def start(self) -> None:
        pass  # each worker starts its framework

    def release_driver_data(self) -> None:
        from regbench.data.splits import forget_splits

        forget_splits()  # workers load their own copy

    def parallel(self) -> int:
        return self.workers

    def device_memory(self) -> int | None:
        return None

    def launch(self, groups: list[list[Task]], on_start, on_epoch: EpochHook) -> Iterator[tuple[Task, Outcome]]:
        return _run_pool(groups, self.workers, on_start, on_epoch, self.threads)


def _run_pool(
    groups: list[list[Task]], workers: int, on_start, on_epoch: EpochHook, threads: int
) -> Iterator[tuple[Task, Outcome]]:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")  # no fork after a framework may have started threads
    events = ctx.Queue()
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    by_key = {t.key: t for group in groups for t in group}
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
        pending = {pool.submit(_execute_in_worker, group): group for group in groups}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                group = pending.pop(future)
                try:
                    outcomes = future.result()
                except Exception as exc:  # noqa: BLE001 - e.g. a worker killed by the OS
                    outcomes = [Outcome.failed(exc, with_traceback=False) for _ in group]
                yield from zip(group, outcomes, strict=True)
    finally:
        _terminate_workers(pool)  # Ctrl-C or an error in the driver: stop the runs in flight now
        pool.shutdown(wait=True, cancel_futures=True)
        stop.set()
        reader.join(timeout=1)


def _terminate_workers(pool) -> None:
    """Stop a pool's running workers now: ``shutdown`` alone waits for the runs in flight. Python 3.14 has
    ``terminate_workers()`` for this; before it, the pool's private ``_processes`` map is the only way."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()
