"""Processes regbench starts never import a file from the working directory: run in a folder that holds a
``pickle.py`` or a ``multiprocessing/`` package (a shared folder, a downloaded study), regbench must not run
them. Before, the figure helper (``python -c``) and spawned workers put the working directory first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from regbench.store.samples import sample_grid

pytestmark = pytest.mark.subprocess
REGBENCH = str(Path(sys.executable).parent / "regbench")  # the console script, as a user runs it


def _trap(folder: Path, module: str, marker: Path) -> None:
    """A module that would record its import in ``marker`` and then break whatever imported it."""
    source = f"open({str(marker)!r}, 'w').write('imported')\nraise SystemExit('hijacked')\n"
    if module.endswith("/"):
        (folder / module).mkdir()
        (folder / module / "__init__.py").write_text(source)
    else:
        (folder / module).write_text(source)


def test_the_figure_helper_imports_nothing_from_the_working_directory(tmp_path: Path):
    exp = tmp_path / "runs" / "grid-20261130-120000"
    sample_grid(exp, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.0])  # seven variants: a helper draws half the figures
    cwd, marker = tmp_path / "shared", tmp_path / "marker"
    cwd.mkdir()
    _trap(cwd, "pickle.py", marker)
    done = subprocess.run([REGBENCH, "compare", str(exp), "--out", str(tmp_path / "out")], cwd=cwd, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert not marker.exists()
    assert (tmp_path / "out" / "report.html").is_file()


@pytest.mark.slow
def test_process_pool_workers_import_nothing_from_the_working_directory(tmp_path: Path, data_dir: Path, tiny_study):
    cwd, marker = tmp_path / "shared", tmp_path / "marker"
    cwd.mkdir()
    _trap(cwd, "multiprocessing/", marker)
    command = [REGBENCH, "run", str(tiny_study), "--out", str(tmp_path / "out"), "--jobs", "2", "--seeds", "0,1"]
    done = subprocess.run(command, cwd=cwd, capture_output=True, env=None)
    assert not marker.exists()
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert len(list((tmp_path / "out").glob("*/*/seed-*/metrics.json"))) == 4
