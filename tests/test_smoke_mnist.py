"""The smoke config through the CLI on real MNIST, when the data are available."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regbench.cli import app

ROOT = Path(__file__).resolve().parents[1]
DATA = os.environ.get("REGBENCH_DATA_DIR", "")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (DATA and (Path(DATA) / "mnist.npz").is_file()),
        reason="real MNIST not found: set REGBENCH_DATA_DIR to a folder holding mnist.npz",
    ),
]


def test_smoke_config_on_real_mnist(tmp_path: Path):
    result = CliRunner().invoke(app, ["run", str(ROOT / "configs" / "smoke.yaml"), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    [exp] = list(tmp_path.iterdir())
    finished = sorted(p.parent.relative_to(exp).as_posix() for p in exp.glob("*/seed-*/metrics.json"))
    assert finished == ["baseline/seed-0", "dropout/seed-0", "l2_early_stopping/seed-0"]
    for metrics_file in exp.glob("*/seed-*/metrics.json"):
        metrics = json.loads(metrics_file.read_text())
        # 3,000 real training images, 2 epochs: far above chance (10%), far below the full study.
        assert 0.80 < metrics["test_accuracy"] < 0.99, (metrics_file, metrics["test_accuracy"])
    env = json.loads((exp / "environment.json").read_text())
    assert env["data_sources"] == [DATA]


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (.ci/run installs it with apt-get)",
)
def test_trains_on_real_fashion_mnist_from_debian(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("REGBENCH_DATA_DIR", raising=False)
    args = ["run", str(ROOT / "configs" / "smoke.yaml"), "--set", "data.dataset=fashion_mnist", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    [exp] = list(tmp_path.iterdir())
    accuracies = [json.loads(p.read_text())["test_accuracy"] for p in exp.glob("*/seed-*/metrics.json")]
    # Fashion-MNIST is harder than MNIST: 3,000 images and 2 epochs give far above chance, below MNIST's 90 %+
    assert len(accuracies) == 3 and all(0.6 < a < 0.9 for a in accuracies), accuracies
    env = json.loads((exp / "environment.json").read_text())
    assert env["data_sources"] == ["/usr/share/datasets/fashion-mnist"]
