"""Sweeps: grid expansion, --dry-run, --seeds, resume after SIGKILL, parallel jobs, failures, schema."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from regbench.cli import app
from regbench.config.loading import json_schema, load_text
from regbench.errors import ConfigError
from regbench.study.run import CtrlC

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

GRID = """\
name: grid
model: {hidden_units: [16, 8]}
train: {epochs: 1, batch_size: 32}
sweep:
  regularization.dropout: [0.0, 0.2, 0.5]
  regularization.l2: [0, 1.0e-4, 1.0e-3]
  train.seeds: [0, 1, 2]
"""


def test_grid_is_the_cartesian_product_named_by_values():
    exp = load_text(GRID)
    assert len(exp.variants) == 9
    assert list(exp.variants)[:3] == ["dropout=0.0,l2=0", "dropout=0.0,l2=0.0001", "dropout=0.0,l2=0.001"]
    cfg = exp.variants["dropout=0.5,l2=0.001"]
    assert cfg.regularization.dropout == 0.5 and cfg.regularization.l2 == 0.001
    assert all(v.train.seeds == [0, 1, 2] for v in exp.variants.values())
    assert exp.sweep_keys == ["regularization.dropout", "regularization.l2"]


def test_grid_crosses_hand_written_variants():
    exp = load_text(
        "name: s\nvariants:\n  base: {}\n  bn: {regularization: {batchnorm: true}}\n"
        "sweep:\n  data.train_subset: [100, 1000]\n"
    )
    assert list(exp.variants) == [
        "base,train_subset=100",
        "base,train_subset=1000",
        "bn,train_subset=100",
        "bn,train_subset=1000",
    ]
    assert exp.variants["bn,train_subset=100"].regularization.batchnorm is True


def test_bad_sweep_entries_point_at_the_sweep_line():
    with pytest.raises(ConfigError) as info:
        load_text(
            "name: s\nsweep:\n  regularization.l3: [1]\n  regularization.l2: [0, -1]\n  train.epochs: 5\n"
            "  train.batch_size: []\n",
            source="s.yaml",
        )
    assert info.value.problems == [
        "s.yaml:3: sweep.regularization.l3: unknown key; did you mean regularization.l2 or regularization.l1 or "
        "regularization.dropout?",
        "s.yaml:4: sweep.regularization.l2: expected a number >= 0.0, got -1",
        "s.yaml:5: sweep.train.epochs: expected a list, got 5",
        "s.yaml:6: sweep.train.batch_size: expected a non-empty list of values, got []",
    ]


def test_dry_run_lists_27_runs_and_writes_nothing(tmp_path: Path):
    study = tmp_path / "grid.yaml"
    study.write_text(GRID)
    result = runner.invoke(app, ["run", str(study), "--dry-run", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "grid: 27 planned run(s)" in result.output
    rows = [line for line in result.output.splitlines() if line.startswith("│")]
    assert len(rows) == 27 and "dropout=0.5,l2=0.001" in rows[-1]
    assert not (tmp_path / "out").exists()


def test_seeds_option_sets_every_variant(tmp_path: Path, tiny_study: Path):
    result = runner.invoke(app, ["run", str(tiny_study), "--dry-run", "--seeds", "3,4,5"])
    assert result.exit_code == 0
    assert "tiny: 6 planned run(s)" in result.output


def test_schema_validates_every_shipped_config():
    import jsonschema

    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "x", "regularization": {"l2": -1}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "x", "variants": {"a": {"regularisation": {}}}}, schema)


def test_schema_command_prints_the_same_schema():
    result = runner.invoke(app, ["schema"])
    assert json.loads(result.output) == json.loads(json.dumps(json_schema()))


def finished(exp: Path) -> dict[str, float]:
    return {str(p.parent.relative_to(exp)): p.stat().st_mtime_ns for p in exp.glob("*/seed-*/metrics.json")}


def start_sweep(tmp_path: Path, data_dir: Path, epochs: int, wait_for: int) -> tuple[subprocess.Popen, Path, Path]:
    """Start the 9-run grid (one seed) as a user would, in its own process, each run alone (fused, all nine
    would finish at once) on TensorFlow (the backend this test process resumes with); return once ``wait_for``
    runs have finished. Returns (process, study file, output folder)."""
    study = tmp_path / "grid.yaml"
    study.write_text(GRID.replace("epochs: 1", f"epochs: {epochs}").replace("[0, 1, 2]", "[0]"))
    out = tmp_path / "out"
    env = {**os.environ, "REGBENCH_DATA_DIR": str(data_dir), "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "regbench", "run", str(study), "--out", str(out), "--no-fuse"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal, even where this runs in the background (a shell there starts jobs ignoring SIGINT).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*/*/seed-*/metrics.json"))) < wait_for:
        time.sleep(0.05)
    return proc, study, out


@pytest.mark.subprocess
@pytest.mark.slow
def test_sigkill_then_resume_loses_and_recomputes_nothing(tmp_path: Path, data_dir: Path):
    proc, study, out = start_sweep(tmp_path, data_dir, epochs=2, wait_for=3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    [exp] = list(out.iterdir())
    before = finished(exp)
    assert 3 <= len(before) < 9, "the kill should land in the middle of the sweep"
    for path in exp.rglob("*.json"):
        json.loads(path.read_text())  # no half-written JSON anywhere

    result = runner.invoke(app, ["run", str(study), "--resume", str(exp)])
    assert result.exit_code == 0, result.output
    after = finished(exp)
    assert len(after) == 9
    assert {k: after[k] for k in before} == before, "a finished run was recomputed"
    assert f"{9 - len(before)} run(s) trained, {len(before)} skipped" in result.output
    for path in exp.rglob("*.json"):
        json.loads(path.read_text())
    assert not list(exp.rglob("*.tmp"))


def test_resume_refuses_a_changed_config(tmp_path: Path, data_dir: Path, tiny_study: Path):
    out = tmp_path / "out"
    assert runner.invoke(app, ["run", str(tiny_study), "--out", str(out), "--set", "train.epochs=1"]).exit_code == 0
    [exp] = list(out.iterdir())
    result = runner.invoke(app, ["run", str(tiny_study), "--resume", str(exp), "--set", "train.epochs=3"])
    assert result.exit_code == 2 and "holds run" in result.output and "another config" in result.output


def test_resume_refuses_a_folder_of_another_backend(tmp_path: Path, data_dir: Path, tiny_study: Path):
    out = tmp_path / "out"
    assert runner.invoke(app, ["run", str(tiny_study), "--out", str(out), "--set", "train.epochs=1"]).exit_code == 0
    [exp] = list(out.iterdir())
    env = json.loads((exp / "environment.json").read_text())
    env["runtime"]["backend"] = "other"  # as if another backend had trained it
    (exp / "environment.json").write_text(json.dumps(env))
    (exp / "dropout" / "seed-0" / "metrics.json").unlink()  # one run left to do
    result = runner.invoke(app, ["run", str(tiny_study), "--resume", str(exp), "--set", "train.epochs=1"])
    assert result.exit_code == 2, result.output
    assert "trained by another runtime (backend other there, tensorflow here)" in result.output
    assert "KERAS_BACKEND=other" in result.output
    assert not (exp / "dropout" / "seed-0" / "metrics.json").exists()


@pytest.mark.subprocess
@pytest.mark.slow
def test_parallel_jobs_write_the_same_folder_layout(tmp_path: Path, data_dir: Path, tiny_study: Path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(tiny_study), "--out", str(out), "--jobs", "2", "--seeds", "0,1"])
    assert result.exit_code == 0, result.output
    [exp] = list(out.iterdir())
    assert sorted(finished(exp)) == ["baseline/seed-0", "baseline/seed-1", "dropout/seed-0", "dropout/seed-1"]
    assert "4 run(s) trained, 0 skipped, 0 failed" in result.output


DROPOUT_SWEEP = """\
name: drops
model: {hidden_units: [16]}
train: {epochs: 2, batch_size: 32, seeds: [0, 1]}
sweep:
  regularization.dropout: [0.0, 0.1, 0.3, 0.5]
"""


@pytest.mark.subprocess
@pytest.mark.slow
def test_dropout_runs_are_the_same_runs_in_one_unit_two_units_or_alone(tmp_path: Path, data_dir: Path):
    """The issue's sweep in small: eight dropout runs as one fused unit, as two (--jobs 2) and each alone
    (--no-fuse). Before, 28 of 32 runs of such a sweep reported another test accuracy in two units than in one."""
    study = tmp_path / "drops.yaml"
    study.write_text(DROPOUT_SWEEP)
    records = {}
    for mode, extra in (("one", []), ("two", ["--jobs", "2"]), ("alone", ["--no-fuse"])):
        out = tmp_path / mode
        result = runner.invoke(app, ["run", str(study), "--out", str(out), *extra])
        assert result.exit_code == 0, result.output
        records[mode] = {
            f"{m.parent.parent.name}/{m.parent.name}": json.loads(m.read_text()) for m in out.glob("*/*/*/metrics.json")
        }
    assert len(records["one"]) == 8 and records["one"].keys() == records["two"].keys() == records["alone"].keys()
    assert {r["fused"]["branches"] for r in records["one"].values()} == {8}
    assert {r["fused"]["branches"] for r in records["two"].values()} == {4}
    for key, one in records["one"].items():
        for mode in ("two", "alone"):
            other = records[mode][key]
            for metric in ("test_accuracy", "train_accuracy", "best_epoch", "epochs_run"):
                assert other[metric] == one[metric], (mode, key, metric)
            assert other["test_data_loss"] == pytest.approx(one["test_data_loss"], rel=1e-5), (mode, key)


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path: Path, data_dir: Path, tiny_study: Path, monkeypatch):
    from regbench.training import driver

    real = driver.train_unit

    def flaky(specs, splits, **options):
        if specs[0].config.dropout_rates()[0] > 0:
            raise RuntimeError("out of memory (simulated)")
        return real(specs, splits, **options)

    monkeypatch.setattr(driver, "train_unit", flaky)
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(tiny_study), "--out", str(out), "--set", "train.epochs=1", "--no-fuse"])
    assert result.exit_code == 1
    assert "Failed: dropout/seed-0: RuntimeError: out of memory (simulated)" in result.output
    [exp] = list(out.iterdir())
    error = json.loads((exp / "dropout" / "seed-0" / "error.json").read_text())
    assert error["ok"] is False and "simulated" in error["error"]
    assert (exp / "baseline" / "seed-0" / "metrics.json").is_file()
    # Resume runs the failed one again (and only it).
    monkeypatch.setattr(driver, "train_unit", real)
    result = runner.invoke(app, ["run", str(tiny_study), "--resume", str(exp), "--set", "train.epochs=1"])
    assert result.exit_code == 0 and "1 run(s) trained, 1 skipped, 0 failed" in result.output
    assert not (exp / "dropout" / "seed-0" / "error.json").exists()


def test_a_learning_rate_of_10_is_marked_diverged(tmp_path: Path, data_dir: Path):
    study = tmp_path / "lr.yaml"
    study.write_text(
        "name: lr\nmodel: {hidden_units: [32]}\ntrain: {epochs: 3}\nsweep:\n  train.learning_rate: [0.001, 10.0]\n"
    )
    result = runner.invoke(app, ["run", str(study), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "Diverged: learning_rate=10.0/seed-0" in result.output
    [exp] = list((tmp_path / "out").iterdir())
    metrics = json.loads((exp / "learning_rate=10.0" / "seed-0" / "metrics.json").read_text())
    assert metrics["status"] == "diverged"
    assert json.loads((exp / "learning_rate=0.001" / "seed-0" / "metrics.json").read_text())["status"] == "finished"
    assert "learning_rate=10.0 (diverged)" in (exp / "summary.md").read_text()


@pytest.mark.slow
def test_learning_curve_written_when_train_subset_is_swept(tmp_path: Path, data_dir: Path):
    study = tmp_path / "lc.yaml"
    study.write_text(
        "name: lc\nmodel: {hidden_units: [16]}\ntrain: {epochs: 1}\n"
        "variants: {base: {}, drop: {regularization: {dropout: 0.3}}}\n"
        "sweep:\n  data.train_subset: [100, 200]\n"
    )
    assert runner.invoke(app, ["run", str(study), "--out", str(tmp_path / "out")]).exit_code == 0
    [exp] = list((tmp_path / "out").iterdir())
    assert (exp / "learning_curve.png").is_file()


@pytest.mark.subprocess
@pytest.mark.slow
def test_ray_executor_runs_a_tiny_sweep_and_compare_reads_it(tmp_path: Path, data_dir: Path, tiny_study: Path):
    pytest.importorskip("ray", reason="Ray not installed: pip install 'regbench[ray]'")
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["run", str(tiny_study), "--out", str(out), "--executor", "ray", "--set", "train.epochs=1"]
    )
    assert result.exit_code == 0, result.output
    [exp] = list(out.iterdir())
    assert sorted(finished(exp)) == ["baseline/seed-0", "dropout/seed-0"]
    env = json.loads((exp / "environment.json").read_text())
    assert env["executor"] == "ray"
    records = [json.loads(m.read_text()) for m in exp.glob("*/seed-0/metrics.json")]
    assert [r["device"]["ray_gpu_ids"] for r in records] == [[], []]  # a CPU-only cluster: no GPU claimed
    assert [r["fused"]["branches"] for r in records] == [2, 2]  # one fused group, as with --jobs 1 locally
    compared = runner.invoke(app, ["compare", str(exp), "--format", "json"])
    assert compared.exit_code == 0
    assert [r["variant"] for r in json.loads(compared.output)["variants"]] == ["baseline", "dropout"]
    (exp / "dropout" / "seed-0" / "metrics.json").unlink()  # a run lost: --resume on Ray trains it alone
    resumed = runner.invoke(
        app, ["run", str(tiny_study), "--resume", str(exp), "--executor", "ray", "--set", "train.epochs=1"]
    )
    assert resumed.exit_code == 0, resumed.output
    assert "1 run(s) trained, 1 skipped, 0 failed" in resumed.output


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the ignored exception, on purpose
def test_ctrl_c_inside_a_weakref_callback_is_not_lost():
    """Python drops an exception raised in a weakref callback; CtrlC raises it again at the next check."""

    class Model:
        pass

    def interrupt(_ref):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler runs between bytecodes, here: inside the callback
            pass

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, whatever runs pytest
    try:
        with CtrlC() as ctrl_c:
            model = Model()
            ref = weakref.ref(model, interrupt)
            del model  # the KeyboardInterrupt is raised in the callback and ignored ("Exception ignored in ...")
            assert ref() is None
            with pytest.raises(KeyboardInterrupt):
                ctrl_c.check()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)  # pytest's own handling, even when an assertion fails


@pytest.mark.subprocess
@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path: Path, data_dir: Path):
    proc, _, out = start_sweep(tmp_path, data_dir, epochs=3, wait_for=1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    [exp] = list(out.iterdir())
    assert f"--resume {exp}" in stderr and "Interrupted:" in stderr
    assert "Traceback" not in stderr
    for path in exp.rglob("*.json"):
        json.loads(path.read_text())
