"""Where runs execute: in this process, in N local processes, or on a Ray cluster.

Every executor takes planned runs and yields ``(task, outcome)`` as runs end, in completion order. The
driver (experiment.py) writes the run folders, so the on-disk format is the same whatever ran the work.
An outcome is ``{"ok": True, "metrics": ..., "history": ...}`` or ``{"ok": False, "error": ..., ...}``.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from regbench.data import data_key, splits_for
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


def execute_job(job: list[Task], on_epoch: EpochHook | None = None, splits: Any = None) -> list[Outcome]:
    """Train a job: one run, or several fused into one model (see fused.py). One outcome per task.

    Errors become failed outcomes, never exceptions: the sweep goes on.
    """
    try:
        from regbench.config import VariantConfig
        from regbench.framework import import_keras

        import_keras()
        cfgs = [VariantConfig.model_validate(t.config) for t in job]
        data = splits or splits_for(cfgs[0], job[0].data_dir)
        hooks = [(lambda e, logs, k=t.key: on_epoch(k, e, logs)) if on_epoch else None for t in job]
        if len(job) == 1:
            from regbench.training import train_run

            metrics, history = train_run(cfgs[0], data, job[0].seed, on_epoch=hooks[0])
            return [{"ok": True, "metrics": metrics, "history": history}]
        from regbench.fused import train_fused

        results = train_fused(cfgs, [t.seed for t in job], data, on_epoch=hooks)
        return [{"ok": True, "metrics": m, "history": h} for m, h, _ in results]
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - a failed run is recorded and the sweep goes on
        failed = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        return [dict(failed) for _ in job]


MAX_BRANCHES = 256  # one fused model's branches at most (and fewer where memory says so: branch_limit)
# Input size and classes by dataset, for branch_limit's estimate (made before any data are loaded).
_SHAPES = {"mnist": (784, 10), "fashion_mnist": (784, 10), "cifar10": (3072, 10), "cifar100": (3072, 100)}


def branch_limit(config: dict[str, Any], memory_bytes: int | None = None) -> int:
    """How many branches of this config one fused model may hold: MAX_BRANCHES, or fewer where a quarter of the
    machine's memory would not hold them. Per branch: the weights eight times over (weights, gradients, Adam's
    two moments, the snapshots kept for early stopping and evaluation) and its predictions on 60,000 examples."""
    inputs, classes = _SHAPES.get(config.get("data", {}).get("dataset", "mnist"), (3072, 100))
    widths = [inputs, *config.get("model", {}).get("hidden_units", []), classes]
    params = sum(a * b + b for a, b in zip(widths, widths[1:], strict=False))
    per_branch = 4 * (8 * params + 2 * 60_000 * classes)
    if memory_bytes is None:
        memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(1, min(MAX_BRANCHES, memory_bytes // 4 // per_branch))


def _components():
    """regbench.components, which imports Keras: through import_keras, so that a driver process (--jobs, Ray)
    whose first Keras import this is does not print TensorFlow's start-up lines."""
    from regbench.framework import import_keras

    import_keras()
    from regbench import components

    return components


def make_jobs(tasks: list[Task], fuse: bool, workers: int = 1, max_branches: int | None = None) -> list[list[Task]]:
    """Group tasks into jobs. Without ``fuse`` every task is its own job. With it, tasks that can share one
    model (same fusion key) are fused, in chunks spread over ``workers`` processes and at most
    ``max_branches`` wide (default: :func:`branch_limit`; whole variants, all their seeds, where the variants
    share one seed list); a task that cannot be fused (batch normalization) stays alone."""
    if not fuse:
        return [[t] for t in tasks]
    fusion_key = _components().fusion_key
    from regbench.config import VariantConfig

    groups: dict[Any, list[Task]] = {}
    alone: list[list[Task]] = []
    for t in tasks:
        key = fusion_key(VariantConfig.model_validate(t.config))
        if key is None:
            alone.append([t])
        else:
            groups.setdefault(key, []).append(t)
    jobs = []
    for group in groups.values():
        limit = max_branches or branch_limit(group[0].config)
        size = min(limit, max(1, -(-len(group) // max(1, workers))))
        seeds: dict[str, list[int]] = {}
        for t in group:
            seeds.setdefault(t.variant, []).append(t.seed)
        seed_sets = {tuple(sorted(s)) for s in seeds.values()}
        n_seeds = len(next(iter(seed_sets)))
        if len(seed_sets) == 1 and n_seeds <= size:
            # Whole variants per job: every seed then has as many branches as the others, and the branches of
            # one seed share one input slot (one batch order) in the fused model.
            names, per_job = list(seeds), max(1, size // n_seeds)
            for i in range(0, len(names), per_job):
                chunk = set(names[i : i + per_job])
                jobs.append([t for t in group if t.variant in chunk])
        else:
            jobs += [group[i : i + size] for i in range(0, len(group), size)]
    return jobs + alone


@dataclass
class Executor:
    """Where runs execute: ``local`` in this process (``jobs`` 1) or in ``jobs`` processes, or on ``ray``.

    The one place that turns the command line's executor choice into behaviour."""

    kind: str = "local"
    jobs: int = 1
    threads: int = 1
    ray_address: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("local", "ray"):
            raise RegbenchError(f"--executor {self.kind}: expected local or ray", exit_code=2)

    @property
    def in_process(self) -> bool:
        return self.kind == "local" and self.jobs <= 1

    def start(self) -> None:
        """Before data are loaded: an in-process executor sets its threads and imports the framework."""
        if self.in_process:
            from regbench.framework import import_keras

            set_thread_env(self.threads)  # only takes effect if the framework has not started yet
            import_keras()

    def data_checked(self) -> None:
        """After the driver checked that every dataset loads: workers load their own copy, so drop it here."""
        if not self.in_process:
            from regbench.data import forget_splits

            forget_splits()

    def run(self, jobs: list[list[Task]], on_start, on_epoch: EpochHook) -> Iterator[tuple[Task, Outcome]]:
        """Execute the jobs; yield (task, outcome) as runs end."""
        if self.kind == "ray":
            return run_ray(jobs, self.ray_address, on_start, on_epoch)
        if self.jobs > 1:
            return run_processes(jobs, self.jobs, on_start, on_epoch, threads=self.threads)
        return run_serial(jobs, on_start, on_epoch)


def trained_alone(tasks: list[Task]) -> dict[str, str]:
    """Under --fuse: the runs that cannot be fused, each with the reason (the config field that prevents it)."""
    from regbench.config import VariantConfig

    why_alone = _components().why_alone
    reasons = {t.key: why_alone(VariantConfig.model_validate(t.config)) for t in tasks}
    return {key: reason for key, reason in reasons.items() if reason is not None}


# ---------------------------------------------------------------------------------------------------------


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
    from regbench.config import VariantConfig

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
