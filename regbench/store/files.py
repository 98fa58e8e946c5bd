"""Atomic writes and strict JSON/CSV/YAML text, for every file regbench writes."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

# libyaml's safe loader and dumper where PyYAML has them: the same documents, about 6x faster on a 16-variant
# sweep's resolved config (read back by every compare), and PyYAML's own otherwise.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write a file so that readers see either the old content or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
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


def csv_text(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:  # NaN (e.g. the std of a single seed) becomes an empty cell, which every CSV reader takes
        writer.writerow({k: "" if isinstance(v, float) and v != v else v for k, v in row.items()})
    return buf.getvalue()
