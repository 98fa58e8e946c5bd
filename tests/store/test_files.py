"""Files regbench writes: readable by whoever the umask allows, and safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import os
import stat
from pathlib import Path

import pytest

from regbench.store.files import atomic_write, csv_text


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_honour_the_umask(tmp_path: Path, umask: int, mode: int):
    """Temporary files are 0600: before, every output file was, and a colleague's compare of a shared folder
    failed with PermissionError."""
    previous = os.umask(umask)
    try:
        atomic_write(tmp_path / "summary.md", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "summary.md").stat().st_mode) == mode


def test_text_a_spreadsheet_would_run_as_a_formula_is_quoted():
    rows = [{"variant": '=HYPERLINK("http://example.org","x")', "n": 3, "delta": -0.5}, {"variant": "@SUM(A1)"}]
    read = list(csv.DictReader(io.StringIO(csv_text(rows))))
    assert read[0]["variant"].startswith("'=") and read[1]["variant"].startswith("'@")
    assert read[0]["delta"] == "-0.5" and read[0]["n"] == "3"  # numbers stay numbers
