"""The run record is typed from trainer to reader: what a reader gets of every format, and what it never gets (a
string "None" for a missing run id, a status as a string)."""

from __future__ import annotations

import json
from pathlib import Path

from regbench.store.reader import finished_run_id, read_run
from regbench.store.records import RunRecord, Status
from regbench.store.samples import sample_metrics, sample_run


def _edit(run: Path, drop: tuple[str, ...] = (), **changes) -> None:
    record = json.loads((run / "metrics.json").read_text())
    for key in drop:
        record.pop(key, None)
    (run / "metrics.json").write_text(json.dumps({**record, **changes}))


def test_a_run_reads_back_as_its_typed_record(tmp_path: Path):
    run = read_run(sample_run(tmp_path / "s-20261201-120000", "l2", 3, 0.97, config={"regularization": {"l2": 1e-4}}))
    record = run.record
    assert isinstance(record, RunRecord) and record.status is Status.FINISHED
    assert (run.variant, run.seed, record.test_accuracy) == ("l2", 3, 0.97)
    assert record.weights.magnitude_histogram.counts == [1, 100]
    assert run.config["regularization"]["l2"] == 1e-4


def test_a_record_without_a_run_id_has_none_never_the_string_none(tmp_path: Path):
    """Before, finished_run_id turned a missing id into "None", a run id like any other."""
    run = sample_run(tmp_path / "s-20261201-120000", "baseline", 0, 0.97)
    _edit(run, drop=("run_id",))
    assert finished_run_id(run) is None
    _edit(run, run_id="abc")
    assert finished_run_id(run) == "abc"


def test_a_first_format_record_reads_with_what_it_lacks_as_none(tmp_path: Path):
    run = sample_run(tmp_path / "s-20261201-120000", "baseline", 0, 0.97)
    _edit(run, drop=("runtime", "weights", "best_epoch", "status"), format=1)
    record = read_run(run).record
    assert record.test_accuracy == 0.97 and record.weights is None and record.best_epoch is None


def test_metrics_json_leaves_out_the_parts_a_run_does_not_have(tmp_path: Path):
    record = RunRecord.of(sample_metrics(0, 0.9), "s", "v", {})
    written = record.as_json()
    assert list(written)[:3] == ["format", "experiment", "variant"] and list(written)[-1] == "config"
    assert written["status"] == "finished"
    assert not {"fused", "resumed_from_epoch", "data", "device", "run_id"} & set(written)
    nan = RunRecord.of(sample_metrics(0, 0.9).model_copy(update={"test_loss": float("nan")}), "s", "v", {})
    assert nan.as_json()["test_loss"] is None  # strict JSON: NaN is null
