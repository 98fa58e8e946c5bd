"""Atomic writes and strict JSON/CSV/YAML text, for every file regbench writes."""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import stat
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


# What a file of an experiment folder may weigh, read in full: far above any real record, far below memory.
RECORD_BYTES = 32 * 2**20  # metrics.json, config.yaml, environment.json, rounds.json
TABLE_BYTES = 256 * 2**20  # history.csv
FIGURE_BYTES = 64 * 2**20  # a PNG embedded in report.html


def check_no_links(folder: Path, root: Path) -> None:
    """Raise ValueError unless every folder from ``root`` down to ``folder`` (both included) is a real folder,
    not a symbolic link: a link in a folder from someone else could make regbench read or write outside it."""
    folder, root = Path(folder), Path(root)
    try:
        parts = folder.relative_to(root).parts
    except ValueError:
        parts = ()
    current = root
    for part in ("", *parts):
        current = current / part if part else current
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            return  # nothing there yet (a writer makes it), nothing to follow
        if stat.S_ISLNK(info.st_mode):
            raise ValueError(f"{current} is a symbolic link; regbench does not follow links in an experiment folder")
        if not stat.S_ISDIR(info.st_mode):
            raise ValueError(f"{current} is not a folder")


def read_file(path: Path, limit: int = RECORD_BYTES, root: Path | None = None, follow: bool = False) -> bytes:
    """The bytes of a regular file of an experiment folder: never through a symbolic link (the file, or a folder
    between ``root`` and it; ``follow``: a file the user named, whose links are theirs), never a FIFO or device
    (opened without blocking, checked before reading), at most ``limit`` bytes. Raises ValueError with the reason
    (OSError when it cannot be opened)."""
    path = Path(path)
    if root is not None:
        check_no_links(path.parent, root)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            why = "regbench does not follow links out of a folder"
            raise ValueError(f"{path.name} is a symbolic link; {why}") from None
        raise
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{path.name} is not a regular file (a FIFO, device or folder); regbench reads only files")
        if info.st_size > limit:
            raise ValueError(f"{path.name} is {info.st_size:,} bytes, more than such a file can be ({limit:,})")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path.name} is more than {limit:,} bytes, more than such a file can be")
    return data


def read_text_file(path: Path, limit: int = RECORD_BYTES, root: Path | None = None) -> str:
    """:func:`read_file` as UTF-8 text (ValueError when it is not)."""
    try:
        return read_file(path, limit, root).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{Path(path).name} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
