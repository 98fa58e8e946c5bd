"""On --resume, a unit with a checkpoint trains again as the same unit (same runs, same order), whatever the
grouping options would make of the runs now; checkpoints of other runs, damaged files and links are passed over."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from regbench.config.schema import VariantConfig
from regbench.execution.units import Task, resumable_units
from regbench.store import checkpoints
from regbench.store.layout import CHECKPOINTS


def tasks(*keys: str) -> list[Task]:
    return [Task(key, key.split("/")[0], int(key[-1]), VariantConfig(), f"id-{key}", None) for key in keys]


def test_a_checkpointed_unit_is_kept_whole_and_in_order():
    todo = tasks("a/seed-0", "b/seed-0", "c/seed-0", "d/seed-0")
    a, b, c, d = (t.run_id for t in todo)
    found = [("x", [c, a]), ("y", [b]), ("z", [a, "another run"]), ("w", [d, d])]
    units, left = resumable_units(todo, found, fuse=True)
    assert [[t.key for t in u] for u in units] == [["c/seed-0", "a/seed-0"], ["b/seed-0"]]
    assert [t.key for t in left] == ["d/seed-0"]  # z: a run already claimed or finished; w: malformed
    units, left = resumable_units(todo, found, fuse=False)  # --no-fuse now: only runs alone continue
    assert [[t.key for t in u] for u in units] == [["b/seed-0"]]
    assert [t.key for t in left] == ["a/seed-0", "c/seed-0", "d/seed-0"]


def test_unfinished_reads_each_checkpoints_runs_and_skips_what_it_cannot_trust(tmp_path):
    good = checkpoints.path_for(tmp_path, ["id-1", "id-2"])
    checkpoints.write(good, {"v0": np.zeros(3)}, {"identity": {"runs": ["id-1", "id-2"]}})
    (tmp_path / CHECKPOINTS / "damaged.npz").write_bytes(b"PK\x03\x04 not a zip")
    (tmp_path / CHECKPOINTS / "link.npz").symlink_to(good)
    checkpoints.write(tmp_path / CHECKPOINTS / "odd.npz", {}, {"identity": {"runs": [1, 2]}})
    assert checkpoints.unfinished(tmp_path) == [(good, ["id-1", "id-2"])]
    assert checkpoints.unfinished(tmp_path / "none") == []
    assert not list((tmp_path / CHECKPOINTS).glob(".*.tmp"))


def test_checkpoints_go_as_runs_are_written_unless_kept(tmp_path, data_dir, tiny_study):
    """A study leaves no .checkpoints behind; output.keep_checkpoint keeps one per group, at the end of training;
    a resume removes a checkpoint whose runs were all written (a kill between the last write and the deletion)."""
    import json

    from typer.testing import CliRunner

    from regbench.cli import app

    runner = CliRunner()

    def run(*args: str) -> Path:
        out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}"
        result = runner.invoke(app, ["run", str(tiny_study), "--out", str(out), *args])
        assert result.exit_code == 0, result.output
        (exp,) = out.iterdir()
        return exp

    plain = run("--no-fuse")
    assert not (plain / CHECKPOINTS).exists()
    kept = run("--set", "output.keep_checkpoint=true")  # fused: one group of two runs
    (path,) = (kept / CHECKPOINTS).glob("*.npz")
    meta = checkpoints.read_meta(path)
    assert meta["finished"] and meta["epochs_done"] == 2 and len(meta["identity"]["runs"]) == 2
    run_ids = {json.loads(p.read_text())["run_id"] for p in kept.glob("*/seed-*/metrics.json")}
    assert set(meta["identity"]["runs"]) == run_ids
    result = runner.invoke(app, ["run", str(tiny_study), "--resume", str(kept)])  # with the overrides it recorded
    assert result.exit_code == 0 and "0 run(s) trained, 2 skipped" in result.output, result.output
    assert "started with: --set output.keep_checkpoint=true" in result.output and (kept / CHECKPOINTS).exists()
    result = runner.invoke(
        app, ["run", str(tiny_study), "--resume", str(kept), "--set", "output.keep_checkpoint=false"]
    )
    assert result.exit_code == 0 and "0 run(s) trained, 2 skipped" in result.output, result.output
    assert not (kept / CHECKPOINTS).exists()
    off = run("--no-fuse", "--set", "output.checkpoint=false", "--set", "train.epochs=3")
    assert not (off / CHECKPOINTS).exists()
