"""report.html as a user sees it: rendered by headless Chromium, with its figures visible."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from regbench.cli import app
from regbench.store.samples import sample_run

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.subprocess,
    pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (apt-get install chromium)"),
]
TAB_BLUE = np.array([0x1F, 0x77, 0xB4]) / 255  # matplotlib's first colour: the baseline's lines and bars


def test_report_renders_with_its_figures(tmp_path: Path):
    exp = tmp_path / "runs" / "s-20260101-000000"
    for seed in range(3):
        sample_run(exp, "baseline", seed, 0.97 + seed / 1000)
        sample_run(exp, "l1", seed, 0.96 + seed / 1000, sparsity=0.7)
    out = tmp_path / "report"
    assert CliRunner().invoke(app, ["compare", str(exp), "-b", "baseline", "--out", str(out)]).exit_code == 0
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,2000",
            f"--screenshot={shot}",
            (out / "report.html").as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    blue = np.all(np.abs(pixels - TAB_BLUE) < 0.05, axis=-1).sum()
    assert blue > 2000, f"only {blue} pixels of the baseline's colour: the figures did not render"
