"""Checkpoint files of an experiment folder (written by :mod:`regbench.training.checkpoint`): one per training
unit that has not finished (a run alone or fused runs), ``.checkpoints/<hash>.npz``, named by its runs' ids.

Each is a NumPy ``.npz`` of plain arrays (read with ``allow_pickle=False``: loading one runs no code) and one
JSON record, ``meta``, whose ``identity`` says which runs, data and runtime it belongs to.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from regbench.store.files import atomic_write_with
from regbench.store.layout import CHECKPOINTS

META = "meta"


def path_for(exp_dir: Path, run_ids: list[str]) -> Path:
    """Where the unit training these runs (in this order) keeps its checkpoint."""
    return exp_dir / CHECKPOINTS / f"{hashlib.sha256(' '.join(run_ids).encode()).hexdigest()[:16]}.npz"


def write(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Replace ``path`` whole: a kill leaves the previous checkpoint or this one, never a part."""
    record = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    atomic_write_with(path, lambda f: np.savez(f, **arrays, **{META: record}), sync=False)


def _regular(path: Path) -> bool:
    """A regular file, not a link, FIFO or device (np.load would follow a link or block on a FIFO)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def read(path: Path, most_bytes: int | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(meta, arrays) of a checkpoint file; raises on a damaged one, or one whose arrays would take more than
    ``most_bytes`` once decompressed (checked from the archive's table before any is)."""
    if not _regular(path):
        raise ValueError(f"{path.name} is not a regular file")
    with zipfile.ZipFile(path) as archive:
        declared = sum(info.file_size for info in archive.infolist())
    if most_bytes is not None and declared > most_bytes:
        raise ValueError(f"{path.name} would decompress to {declared:,} bytes, more than this model's checkpoint")
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    return json.loads(arrays.pop(META).tobytes()), arrays


META_BYTES = 2**26  # a meta record decompressed: far above any real one


def read_meta(path: Path) -> dict[str, Any] | None:
    """A checkpoint's meta record alone (the arrays stay on disk), or None when it cannot be read."""
    if not _regular(path):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            if archive.getinfo(f"{META}.npy").file_size > META_BYTES:
                return None
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(data[META].tobytes())
        return meta if isinstance(meta, dict) else None
    except Exception:  # noqa: BLE001 - any unreadable file is no checkpoint
        return None


def unfinished(exp_dir: Path) -> list[tuple[Path, list[str]]]:
    """Each readable checkpoint of ``exp_dir`` with the run ids it trains, in branch order."""
    folder = exp_dir / CHECKPOINTS
    if folder.is_symlink() or not folder.is_dir():  # a link could point anywhere: no checkpoint is read through it
        return []
    found = []
    for path in sorted(folder.glob("*.npz")):
        if not _regular(path):
            continue
        runs = ((read_meta(path) or {}).get("identity") or {}).get("runs")
        if isinstance(runs, list) and runs and all(isinstance(r, str) for r in runs):
            found.append((path, runs))
    return found
