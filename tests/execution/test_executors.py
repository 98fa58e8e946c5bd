"""Executors behind one protocol: every task comes back once, as a typed Outcome, whichever executor ran it."""

from __future__ import annotations

from pathlib import Path

import pytest

from regbench.config.schema import VariantConfig
from regbench.errors import RegbenchError
from regbench.execution.executor import make_executor
from regbench.execution.groups import Task
from regbench.execution.local import InProcess, ProcessPool
from regbench.execution.outcome import Outcome, Status


def _tasks(data_dir: Path, n: int) -> list[Task]:
    """Runs whose data cannot be found: each fails fast, in whatever process runs it, without training."""
    cfg = VariantConfig.model_validate({"data": {"dir": str(data_dir)}}).model_dump(mode="json")
    return [Task(f"v{i}/seed-0", f"v{i}", 0, cfg, None) for i in range(n)]


def test_the_command_lines_choice_picks_the_executor():
    assert isinstance(make_executor("local", jobs=1), InProcess)
    assert isinstance(make_executor("local", jobs=2), ProcessPool)
    with pytest.raises(RegbenchError, match="--executor lokal: expected local or ray"):
        make_executor("lokal")


@pytest.mark.subprocess
@pytest.mark.parametrize("jobs", [1, 2])
def test_failed_runs_come_back_as_outcomes_with_their_reason(tmp_path: Path, jobs: int):
    pytest.importorskip("keras")
    tasks = _tasks(tmp_path / "missing", 3)
    executor = make_executor("local", jobs=jobs)
    started: list[str] = []
    ended = list(executor.launch([[t] for t in tasks], lambda t: started.append(t.key), lambda *a: None))
    assert sorted(t.key for t, _ in ended) == sorted(t.key for t in tasks)
    assert sorted(started) == sorted(t.key for t in tasks)
    for _, outcome in ended:
        assert isinstance(outcome, Outcome) and outcome.status is Status.FAILED
        assert outcome.error.startswith("DataError: ") and "missing" in outcome.error
        assert not outcome.status.trained()


def test_a_ray_too_old_to_secure_a_local_cluster_is_refused_before_anything_is_written(
    tmp_path: Path, data_dir: Path, tiny_study: Path, monkeypatch
):
    """Ray before 2.59 started a local cluster without authentication, listening on every interface."""
    ray = pytest.importorskip("ray")
    from typer.testing import CliRunner

    from regbench.cli import app

    monkeypatch.setattr(ray, "__version__", "2.58.1")
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("a local Ray was started"))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(tiny_study), "--executor", "ray", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "Ray 2.58.1 starts a local cluster without authentication" in result.output
    assert not out.exists() or not any(out.iterdir())


DRIVER_WITH_RAY_FIRST = """
import os, sys
import ray
ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)  # before the study: no backend yet
from regbench.cli import main
sys.argv = ["regbench", "run", sys.argv[1], "--executor", "ray", "--out", sys.argv[2], "--backend", "jax"]
main()
"""


@pytest.mark.subprocess
@pytest.mark.slow
def test_runs_on_a_ray_started_before_the_study_train_on_the_studys_backend(tmp_path, data_dir, tiny_study):
    """Before, the workers of a Ray that was running before the study trained on their own default backend
    (TensorFlow) while environment.json said jax."""
    import json
    import os
    import subprocess
    import sys

    pytest.importorskip("ray", reason="Ray not installed: pip install 'regbench[ray]'")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-c", DRIVER_WITH_RAY_FIRST, str(tiny_study), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (exp,) = out.iterdir()
    assert json.loads((exp / "environment.json").read_text())["backend"] == "jax"
    runs = [json.loads(m.read_text())["runtime"]["backend"] for m in exp.glob("*/seed-*/metrics.json")]
    assert runs == ["jax", "jax"]
