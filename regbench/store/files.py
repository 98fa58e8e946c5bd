"""Atomic writes and strict JSON/CSV/YAML text, for every file regbench writes."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import yaml

# libyaml's safe loader and dumper where PyYAML has them (the same documents, faster to read: every compare reads
# each folder's resolved config; docs/performance.md), and PyYAML's own otherwise.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write a file so that readers see either the old content or the whole new one, never a part. Its mode is
    what ``open`` would give (0666 less the umask): a temporary file is 0600, which would keep a colleague's
    ``compare`` out of a shared folder."""
    atomic_write_with(path, lambda fh: fh.write(data.encode() if isinstance(data, str) else data))


def atomic_write_with(path: Path, write: Callable[[BinaryIO], Any], sync: bool = True) -> None:
    """:func:`atomic_write` of what ``write`` writes into the open file; ``sync=False`` skips the fsync (a file
    that a lost write only makes unreadable, never wrong: a checkpoint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def json_safe(obj: Any) -> Any:
    """NaN and infinities become null, so the file is strict JSON that every tool parses."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n")


def _cell(value: Any) -> Any:
    """NaN (e.g. the std of a single seed) as an empty cell, which every CSV reader takes; text that a spreadsheet
    would run as a formula (a variant name from someone's folder starting with =, +, -, @) prefixed with '."""
    if isinstance(value, float) and value != value:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_text(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buf.getvalue()
