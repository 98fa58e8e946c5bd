"""Where runs execute: in this process, in N local processes, or on a Ray cluster.

Every executor takes planned runs and yields ``(task, outcome)`` as runs end, in completion order. The
driver (experiment.py) writes the run folders, so the on-disk format is the same whatever ran the work.
An outcome is ``{"ok": True, "metrics": ..., "history": ...}`` or ``{"ok": False, "error": ..., ...}``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass
class Task:
    """One run to execute: everything a worker needs, all picklable."""

    key: str  # "<variant>/seed-<seed>"
    variant: str
    seed: int
    config: dict[str, Any]  # VariantConfig as JSON
    data_dir: str | None
    threads: int = 0  # 0: leave the framework's default


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


def _fusion():
    """regbench.training.fusion, which imports Keras: through import_keras, so that a driver process (--jobs, Ray)
    whose first Keras import this is does not print TensorFlow's start-up lines."""
    from regbench.backend.quiet_import import import_keras

    import_keras()
    from regbench.training import fusion

    return fusion


def make_jobs(tasks: list[Task], fuse: bool, workers: int = 1, max_branches: int | None = None) -> list[list[Task]]:
    """Group tasks into jobs. Without ``fuse`` every task is its own job. With it, tasks that can share one
    model (same fusion key) are fused, in chunks spread over ``workers`` processes and at most
    ``max_branches`` wide (default: :func:`branch_limit`; whole variants, all their seeds, where the variants
    share one seed list); a task that cannot be fused (batch normalization) stays alone."""
    if not fuse:
        return [[t] for t in tasks]
    fusion_key = _fusion().fusion_key
    from regbench.config.schema import VariantConfig

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


def trained_alone(tasks: list[Task]) -> dict[str, str]:
    """Under --fuse: the runs that cannot be fused, each with the reason (the config field that prevents it)."""
    from regbench.config.schema import VariantConfig

    why_alone = _fusion().why_alone
    reasons = {t.key: why_alone(VariantConfig.model_validate(t.config)) for t in tasks}
    return {key: reason for key, reason in reasons.items() if reason is not None}
