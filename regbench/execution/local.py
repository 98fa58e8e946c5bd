"""TODO."""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Iterator

from regbench.execution.jobs import Task
from regbench.execution.outcome import EpochHook, Outcome
from regbench.execution.worker import execute_job, set_thread_env


def run_serial(jobs: list[list[Task]], on_start, on_epoch: EpochHook) -> Iterator[tuple[Task, Outcome]]:
    """In this process, one job after another."""
    for job in jobs:
        for task in job:
            on_start(task)
        yield from zip(job, execute_job(job, on_epoch), strict=True)


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


def _execute_in_worker(job: list[Task]) -> list[Outcome]:
    for task in job:
        _QUEUE.put(("start", task.key, 0, {}))
    return execute_job(job, on_epoch=lambda key, e, logs: _QUEUE.put(("epoch", key, e, logs)))


def run_processes(
    jobs: list[list[Task]], workers: int, on_start, on_epoch: EpochHook, threads: int = 1
) -> Iterator[tuple[Task, Outcome]]:
    """``workers`` processes, each limited to ``threads`` CPU threads (0: its share of the cores)."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")  # no fork after a framework may have started threads
    events = ctx.Queue()
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    by_key = {t.key: t for job in jobs for t in job}
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
        pending = {pool.submit(_execute_in_worker, job): job for job in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                try:
                    outcomes = future.result()
                except Exception as exc:  # noqa: BLE001 - e.g. a worker killed by the OS
                    outcomes = [{"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": ""}] * len(job)
                yield from zip(job, outcomes, strict=True)
    finally:
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()  # Ctrl-C or an error in the driver: stop the runs in flight now
        pool.shutdown(wait=True, cancel_futures=True)
        stop.set()
        reader.join(timeout=1)
