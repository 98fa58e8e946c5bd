"""The work an executor is given: a task per run, and units of tasks that train together (fused) or alone."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regbench.config.choices import SaveMode
from regbench.config.schema import VariantConfig
from regbench.data.datasets import SHAPES


@dataclass(frozen=True)
class Task:
    """One run to execute: everything a worker needs, all picklable, made once by the study's driver."""

    key: str  # "<variant>/seed-<seed>"
    variant: str
    seed: int
    config: VariantConfig
    run_id: str  # store.identity.run_id of its config and seed, as the study's plan has it
    data_dir: str | None
    save_model: SaveMode = SaveMode.NONE


@dataclass(frozen=True)
class Unit:
    """Tasks that train as one unit: one run alone, or several fused into one model (training.driver), with the
    file the unit keeps its per-epoch checkpoint in (store.checkpoints; None: none)."""

    tasks: tuple[Task, ...]
    checkpoint: Path | None = None
    keep_checkpoint: bool = False  # output.keep_checkpoint: also checkpoint the end of training


MAX_BRANCHES = 256  # one fused model's branches at most (and fewer where memory says so: branch_limit)


def branch_limit(config: VariantConfig, memory_bytes: int | None = None) -> int:
    """How many branches of this config one fused model may hold: MAX_BRANCHES, or fewer where a quarter of the
    machine's memory would not hold them. Per branch: the weights eight times over (weights, gradients, Adam's
    two moments, the snapshots kept for early stopping and evaluation) and its predictions on 60,000 examples."""
    shape, classes = SHAPES[config.data.dataset]
    inputs = math.prod(shape)
    widths = [inputs, *config.model.hidden_units, classes]
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


def make_units(
    tasks: list[Task], fuse: bool, parallel: int = 1, max_branches: int | None = None, memory_bytes: int | None = None
) -> list[list[Task]]:
    """The tasks of each unit an executor trains: one run alone, or several fused into one model. Without
    ``fuse`` every task is a unit of its own. With it, tasks that can share one model (same fusion key) are
    fused, in chunks spread over ``parallel`` slots and at most ``max_branches`` wide (default: :func:`branch_limit`
    of ``memory_bytes``, the memory of the device that trains them, or this machine's; whole variants, all their
    seeds, where the variants share one seed list); a task that cannot be fused (batch normalization) stays
    alone."""
    if not fuse:
        return [[t] for t in tasks]
    fusion_key = _fusion().fusion_key
    by_key: dict[Any, list[Task]] = {}
    alone: list[list[Task]] = []
    for t in tasks:
        key = fusion_key(t.config)
        if key is None:
            alone.append([t])
        else:
            by_key.setdefault(key, []).append(t)
    units = []
    for fusable in by_key.values():
        limit = max_branches or branch_limit(fusable[0].config, memory_bytes)
        size = min(limit, max(1, -(-len(fusable) // max(1, parallel))))
        seeds: dict[str, list[int]] = {}
        for t in fusable:
            seeds.setdefault(t.variant, []).append(t.seed)
        seed_sets = {tuple(sorted(s)) for s in seeds.values()}
        n_seeds = len(next(iter(seed_sets)))
        if len(seed_sets) == 1 and n_seeds <= size:
            # Whole variants per unit: every seed then has as many branches as the others, and the branches of
            # one seed share one input slot (one batch order) in the fused model.
            names, per_unit = list(seeds), max(1, size // n_seeds)
            for i in range(0, len(names), per_unit):
                chunk = set(names[i : i + per_unit])
                units.append([t for t in fusable if t.variant in chunk])
        else:
            units += [fusable[i : i + size] for i in range(0, len(fusable), size)]
    return units + alone


def trained_alone(tasks: list[Task]) -> dict[str, str]:
    """Under --fuse: the runs that cannot be fused, each with the reason (the config field that prevents it)."""
    why_alone = _fusion().why_alone
    reasons = {t.key: why_alone(t.config) for t in tasks}
    return {key: reason for key, reason in reasons.items() if reason is not None}


def resumable_units(
    tasks: list[Task], found: list[tuple[Any, list[str]]], fuse: bool
) -> tuple[list[list[Task]], list[Task]]:
    """The units that continue from a checkpoint, and the tasks left: each checkpoint (``found``: its
    runs' ids in branch order, store.checkpoints.unfinished) whose runs are all among ``tasks`` trains as the same
    unit again, in the same order, so that it continues where it stopped; a fused unit only under ``fuse``."""
    by_id = {t.run_id: t for t in tasks}
    units = []
    for _, runs in found:
        if (len(runs) > 1 and not fuse) or len(set(runs)) != len(runs) or any(r not in by_id for r in runs):
            continue
        units.append([by_id.pop(r) for r in runs])
    left = {id(t) for t in by_id.values()}
    return units, [t for t in tasks if id(t) in left]
