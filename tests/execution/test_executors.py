"""Executors behind one protocol: every task comes back once, as a typed Outcome, whichever executor ran it."""

from __future__ import annotations

from pathlib import Path

import pytest

from regbench.config.schema import VariantConfig
from regbench.execution.executor import ExecutorConfig, ExecutorKind, make_executor
from regbench.execution.local import InProcess, ProcessPool
from regbench.execution.outcome import Outcome, Status
from regbench.execution.units import Task, Unit


def _tasks(data_dir: Path, n: int) -> list[Task]:
    """Runs whose data cannot be found: each fails fast, in whatever process runs it, without training."""
    cfg = VariantConfig.model_validate({"data": {"dir": str(data_dir)}})
    return [Task(f"v{i}/seed-0", f"v{i}", 0, cfg, f"id-{i}", None) for i in range(n)]


def test_the_command_lines_choice_picks_the_executor(tiny_study):
    from typer.testing import CliRunner

    from regbench.cli import app

    assert isinstance(make_executor(ExecutorConfig(jobs=1)), InProcess)
    assert isinstance(make_executor(ExecutorConfig(ExecutorKind.LOCAL, jobs=2)), ProcessPool)
    result = CliRunner().invoke(app, ["run", str(tiny_study), "--executor", "lokal"])
    shown = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "'lokal' is not one of 'local', 'ray'" in shown, result.output


@pytest.mark.subprocess
@pytest.mark.parametrize("jobs", [1, 2])
def test_failed_runs_come_back_as_outcomes_with_their_reason(tmp_path: Path, jobs: int):
    pytest.importorskip("keras")
    tasks = _tasks(tmp_path / "missing", 3)
    executor = make_executor(ExecutorConfig(jobs=jobs))
    assert executor.setup().parallel == jobs
    started: list[str] = []
    ended = list(executor.launch([Unit((t,)) for t in tasks], lambda t: started.append(t.key), lambda *a: None))
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


RAY_WITH_TWO_GPUS = """
import sys
import ray
ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
from regbench.cli import main
study, out, *extra = sys.argv[1:]
sys.argv = ["regbench", "run", study, "--executor", "ray", "--out", out, "--backend", "jax", *extra]
main()
"""

SWEEP_32 = """\
name: wide
model: {hidden_units: [16, 8]}
data: {train_subset: 256}
train: {epochs: 2, batch_size: 32, seeds: [0, 1]}
sweep:
  regularization.l2: [0.0, 1.0e-5, 1.0e-4, 1.0e-3]
  regularization.dropout: [[0.0, 0.0], [0.1, 0.0], [0.2, 0.0], [0.3, 0.0]]
"""


@pytest.mark.subprocess
@pytest.mark.slow
def test_on_a_ray_cluster_with_gpus_each_fused_unit_claims_one_and_results_are_the_local_ones(tmp_path, data_dir):
    """A local Ray declaring two GPUs (Ray takes the declaration; training then runs on the CPU): the 32-run
    sweep is split into two fused units, each task gets a GPU of its own, both train at once, and every run is
    the run of the same sweep trained locally as one unit of 32: the same epochs and test accuracy, losses to
    float32 rounding (dropout masks are each run's own, whatever its unit)."""
    import json
    import os
    import subprocess
    import sys

    pytest.importorskip("ray", reason="Ray not installed: pip install 'regbench[ray]'")
    study = tmp_path / "wide.yaml"
    study.write_text(SWEEP_32)
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    done = subprocess.run(
        [sys.executable, "-c", RAY_WITH_TWO_GPUS, str(study), str(tmp_path / "ray")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (on_ray,) = (tmp_path / "ray").iterdir()
    records = {
        m.parent.parent.name + "/" + m.parent.name: json.loads(m.read_text()) for m in on_ray.glob("*/*/metrics.json")
    }
    assert len(records) == 32
    devices = {json.dumps(r["device"]["ray_gpu_ids"]): r["device"] for r in records.values()}
    assert sorted(devices) == ['["0"]', '["1"]'], devices  # two units, a GPU each
    first, second = devices.values()
    assert first["task_began"] < second["task_ended"] and second["task_began"] < first["task_ended"], "not at once"
    assert {r["fused"]["branches"] for r in records.values()} == {16}

    forced = subprocess.run(  # the study key forces CPUs: no GPU claimed, the runs in one unit as with --jobs 1
        [
            sys.executable,
            "-c",
            RAY_WITH_TWO_GPUS,
            str(study),
            str(tmp_path / "cpu"),
            "--set",
            "execution.gpus_per_task=0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert forced.returncode == 0, forced.stdout[-2000:] + forced.stderr[-2000:]
    on_cpu = [json.loads(m.read_text()) for m in (tmp_path / "cpu").glob("*/*/*/metrics.json")]
    assert {json.dumps(r["device"]["ray_gpu_ids"]) for r in on_cpu} == {"[]"}
    assert {r["fused"]["branches"] for r in on_cpu} == {32}

    local = [sys.executable, "-m", "regbench", "run", str(study), "--out", str(tmp_path / "local")]
    done = subprocess.run([*local, "--backend", "jax"], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (here,) = (tmp_path / "local").iterdir()
    for key, record in records.items():
        mine = json.loads((here / key / "metrics.json").read_text())
        assert mine["fused"]["branches"] == 32
        for metric in ("test_accuracy", "train_accuracy", "best_epoch", "epochs_run"):
            assert record[metric] == mine[metric], (key, metric)
        assert record["test_data_loss"] == pytest.approx(mine["test_data_loss"], rel=1e-5), key


@pytest.mark.subprocess
@pytest.mark.slow
def test_a_ray_worker_killed_mid_sweep_is_retried_and_the_sweep_finishes(tmp_path, data_dir):
    """kill -9 of the worker process training one fused unit: Ray runs that task again (its default for a
    lost worker), and every run of the sweep ends up in the folder; nothing is lost, nothing hangs."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    pytest.importorskip("ray", reason="Ray not installed: pip install 'regbench[ray]'")
    study = tmp_path / "two.yaml"
    study.write_text(
        "name: two\nmodel: {hidden_units: [16]}\ntrain: {epochs: 30, batch_size: 16, seeds: [0, 1]}\n"
        "variants: {baseline: {}, l2: {regularization: {l2: 1.0e-4}}}\n"
    )
    out = tmp_path / "out"
    command = [sys.executable, "-m", "regbench", "run", str(study), "--executor", "ray", "--jobs", "2"]
    driver = subprocess.Popen(
        [*command, "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    killed = None
    deadline = time.time() + 300
    while killed is None and driver.poll() is None and time.time() < deadline:
        ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
        workers = [int(line.split()[0]) for line in ps.splitlines() if "ray::_execute_ray" in line]
        if workers:
            time.sleep(2)  # let it train a while
            os.kill(workers[0], signal.SIGKILL)
            killed = workers[0]
        time.sleep(0.2)
    output, _ = driver.communicate(timeout=600)
    assert killed is not None, "no Ray worker was seen training: " + output[-2000:]
    (exp,) = out.iterdir()
    finished = sorted(str(m.parent.relative_to(exp)) for m in exp.glob("*/*/metrics.json"))
    failed = {str(e.parent.relative_to(exp)): json.loads(e.read_text())["error"] for e in exp.glob("*/*/error.json")}
    assert len(finished) + len(failed) == 4, output[-2000:]
    assert driver.returncode == (1 if failed else 0), output[-2000:]
    for key, error in failed.items():  # not retried: the runs say why
        assert "Worker" in error or "worker" in error or "died" in error, (key, error)
    assert len(finished) >= 2  # the other unit finished either way


def test_the_standard_library_internals_regbench_uses_are_there():
    from regbench.execution.internals import contract_problems

    assert contract_problems() == []
