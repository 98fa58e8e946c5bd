"""A full disk, and names too long for a file system: one clear line, the finished runs kept, the sweep goes on.
On ca983a6 a full disk ended `run` with a traceback and stopped the other workers' runs, and a sweep label over
255 characters passed validation, then failed after training when its folder was created."""

from __future__ import annotations

import errno
import json
from pathlib import Path

from typer.testing import CliRunner

from regbench.cli import app
from regbench.store import writer

runner = CliRunner()


def _full_disk_for(part: str, real):
    def write(path: Path, *args):
        if part in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *args)

    return write


def test_a_run_that_cannot_be_written_fails_alone_and_the_sweep_goes_on(tmp_path, data_dir, tiny_study, monkeypatch):
    real = writer.write_json
    monkeypatch.setattr(writer, "write_json", _full_disk_for("dropout", real))
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(tiny_study), "--out", str(out)])
    assert result.exit_code == 1, result.output
    (exp,) = out.iterdir()
    failed = [line for line in result.output.splitlines() if line.startswith("Failed: ")]
    assert failed == [
        f"Failed: dropout/seed-0: could not write its results (No space left on device: "
        f"{exp / 'dropout' / 'seed-0' / 'metrics.json'})"
    ]
    assert "Traceback" not in result.output
    assert json.loads((exp / "baseline" / "seed-0" / "metrics.json").read_text())["status"] == "finished"
    assert "baseline" in (exp / "summary.md").read_text()

    monkeypatch.setattr(writer, "write_json", real)  # room again: --resume trains what was not written
    result = runner.invoke(app, ["run", str(tiny_study), "--resume", str(exp)])
    assert result.exit_code == 0, result.output
    assert (exp / "dropout" / "seed-0" / "metrics.json").is_file()


def test_a_summary_that_cannot_be_written_is_one_line_that_keeps_the_runs(tmp_path, data_dir, tiny_study, monkeypatch):
    from regbench.output import publish

    monkeypatch.setattr(publish, "atomic_write", _full_disk_for("summary", publish.atomic_write))
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(tiny_study), "--out", str(out)])
    assert result.exit_code == 1, result.output
    (exp,) = out.iterdir()
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert error.startswith(f"Error: {exp}: could not write the summary (No space left on device: {exp}/summary")
    assert error.endswith(
        f"the 2 finished runs in it are kept: free some space, then run the study again with "
        f"--resume {exp} to train what is missing and write the summary"
    )
    assert len(list(exp.glob("*/seed-0/metrics.json"))) == 2


def test_a_variant_name_too_long_for_a_file_name_is_shortened_with_its_hash(tmp_path, data_dir):
    """Five swept keys crossed with a long hand-written name: the labels pass 255 characters."""
    study = tmp_path / "long.yaml"
    study.write_text(
        "name: long\n"
        "train: {epochs: 1, seeds: [0]}\n"
        f"variants: {{{'wider_hidden_layers_with_noise_' * 3}: {{}}}}\n"
        "sweep:\n"
        "  regularization.l2: [0.000012345678901234567890123456789]\n"
        "  regularization.l1: [0.000012345678901234567890123456789, 0.000022345678901234567890123456789]\n"
        "  regularization.gaussian_noise: [0.0123456789012345678901234567890123456789]\n"
        "  regularization.dropout: [[0.1234567890123456789, 0.1234567890123456789]]\n"
        "  train.learning_rate: [0.0012345678901234567890123456789012345678]\n"
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(study), "--out", str(out)])
    assert result.exit_code == 0, result.output
    (exp,) = out.iterdir()
    names = sorted(p.name for p in exp.iterdir() if p.is_dir())
    assert len(names) == 2 and all(len(n) == 217 and n[200] == "~" for n in names), names
    variants = sorted(json.loads(m.read_text())["variant"] for m in exp.glob("*/seed-0/metrics.json"))
    assert all(len(v) > 255 for v in variants) and variants[0] != variants[1]
    assert [v[:200] for v in variants] == [n[:200] for n in names]
    rows = json.loads(runner.invoke(app, ["compare", str(exp), "--format", "json"]).stdout)["variants"]
    assert sorted(r["variant"] for r in rows) == variants
