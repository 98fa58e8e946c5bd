"""Experiment folders from someone else (issue 31): links, FIFOs, bombs, markup and damaged files in them never
make regbench read, embed, export or write outside the folder, hang, or show a traceback. Each case is one line
(or a clean skip) and leaves everything outside the folder as it was. Each failed on 9bb466c: a traceback, a
hang, a file from outside embedded or uploaded, or a write through a link."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, tree_state
from typer.testing import CliRunner

from regbench.cli import app
from regbench.store.samples import sample_run

runner = CliRunner()
SECRET = b"-----BEGIN OPENSSH PRIVATE KEY----- the-private-line"
EXP = "s-20261130-120000"


@pytest.fixture
def exp(tmp_path: Path) -> Path:
    """An experiment folder of two variants, two seeds each (written by the real writer, no training)."""
    folder = tmp_path / "runs" / EXP
    for seed in (0, 1):
        sample_run(folder, "baseline", seed, 0.97 + seed / 1000)
        sample_run(folder, "l2", seed, 0.975 + seed / 1000, config={"regularization": {"l2": 1e-4}})
    (tmp_path / "secret.key").write_bytes(SECRET)
    return folder


def regbench(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """regbench in a new process, so that a hang is a timeout (a failure) rather than a test that never ends, and
    memory is capped (a bomb is a MemoryError, not a machine out of memory)."""
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))

    return subprocess.run(
        [sys.executable, "-m", "regbench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=cap,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        cwd=ROOT,
    )


def one_error_line(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in output, output
    return lines[0]


def test_a_linked_figure_is_never_embedded_in_the_report(tmp_path: Path, exp: Path):
    from regbench.output.publish import write_summary

    (exp / "search_history.png").symlink_to(tmp_path / "secret.key")
    before = tree_state(tmp_path, exp)
    result = runner.invoke(app, ["compare", str(exp), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    write_summary(exp)  # what run --resume writes into the folder itself
    encoded = base64.b64encode(SECRET).decode()[:40]
    for page in (tmp_path / "out" / "report.html", exp / "report.html"):
        assert encoded not in page.read_text() and "the-private-line" not in page.read_text()
    assert tree_state(tmp_path, exp, tmp_path / "out") == before


def test_a_lone_run_folder_exports_no_figure_of_the_folders_above_it(tmp_path: Path, exp: Path, monkeypatch):
    pytest.importorskip("mlflow")
    (exp / "loss.png").write_bytes(b"\x89PNG not this run's")
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = runner.invoke(app, ["export", "mlflow", str(exp / "baseline" / "seed-0"), "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    uploaded = [p.name for p in tmp_path.rglob("*") if p.is_file() and {"mlruns", "mlartifacts"} & set(p.parts)]
    assert "metrics.json" in uploaded and "loss.png" not in uploaded


@pytest.mark.parametrize("name", ["metrics.json", "history.csv"])
def test_a_fifo_in_a_run_folder_is_skipped_not_waited_on(tmp_path: Path, exp: Path, name: str):
    fifo = exp / "l2" / "seed-1" / name
    fifo.unlink()
    os.mkfifo(fifo)
    proc = regbench("compare", str(exp), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    skipped = json.loads(proc.stdout)["skipped"]
    assert [s["reason"] for s in skipped] == [
        f"{name} is not a regular file (a FIFO, device or folder); regbench reads only files"
    ]


@pytest.mark.parametrize("name", ["config.yaml", "environment.json"])
def test_a_fifo_for_a_folder_file_is_not_waited_on(tmp_path: Path, exp: Path, name: str):
    (exp / name).unlink(missing_ok=True)
    os.mkfifo(exp / name)
    proc = regbench("compare", str(exp), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert [r["n"] for r in json.loads(proc.stdout)["variants"]] == [2, 2]


def test_a_yaml_bomb_in_a_folders_config_is_refused_at_once(tmp_path: Path, exp: Path, tiny_study: Path):
    """430 bytes of aliases that expand to 10^9 items: 40 s, 5 GB and a 722 MB error line on 9bb466c."""
    levels = [f"a0: &a0 [{','.join(['x'] * 10)}]"]
    levels += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    (exp / "config.yaml").write_text("name: tiny\n" + "\n".join(levels) + "\n")
    proc = regbench("compare", str(exp), "--format", "json", timeout=30)
    assert proc.returncode == 0 and len(proc.stderr) < 2000, proc.stderr[:2000]
    assert [r["n"] for r in json.loads(proc.stdout)["variants"]] == [2, 2]
    proc = regbench("run", str(tiny_study), "--resume", str(exp), timeout=30)
    assert proc.returncode == 2 and len(proc.stdout + proc.stderr) < 2000, (proc.stdout + proc.stderr)[:2000]
    assert "not an experiment folder (no readable config.yaml)" in (proc.stdout + proc.stderr).splitlines()[-1]


def test_validate_refuses_a_device_and_a_fifo_without_reading_them(tmp_path: Path):
    os.mkfifo(tmp_path / "study.yaml")
    for path in ("/dev/zero", str(tmp_path / "study.yaml")):
        proc = regbench("validate", path, timeout=30)
        assert proc.returncode == 2
        assert "is not a regular file" in one_error_line(proc.stdout + proc.stderr)


def test_compare_refuses_an_out_folder_whose_report_is_a_folder_or_a_link(tmp_path: Path, exp: Path):
    out = tmp_path / "out"
    (out / "report.html").mkdir(parents=True)
    (out / "summary.md").symlink_to(tmp_path / "secret.key")
    result = runner.invoke(app, ["compare", str(exp), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "report.html: is a folder" in result.output and "summary.md: is a symbolic link" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "summary.md"]  # nothing written
    assert (tmp_path / "secret.key").read_bytes() == SECRET


@pytest.mark.parametrize(
    "folder",
    ["evil[/x]", "[red]shown[/red]", "esc\x1b]8;;https://example.org\x07link\x1b]8;;\x07"],
)
def test_markup_and_escapes_in_a_folder_name_are_shown_as_written(tmp_path: Path, exp: Path, folder: str):
    moved = tmp_path / folder / EXP
    moved.parent.mkdir(parents=True)
    exp.rename(moved)
    out = tmp_path / f"out{folder}"
    result = runner.invoke(app, ["compare", str(tmp_path / folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    shown = str(out).replace("\x1b", "\\x1b").replace("\x07", "\\x07")
    assert f"{shown}/report.html" in result.output.replace("\n", "")


def test_summary_md_keeps_one_row_per_variant_whatever_the_name(tmp_path: Path):
    exp = tmp_path / "runs" / EXP
    sample_run(exp, "baseline", 0, 0.97)
    other = sample_run(exp, "other", 0, 0.96, config={"regularization": {"l2": 1e-4}})
    record = json.loads((other / "metrics.json").read_text())
    record["variant"] = "two\nlines | <img src=x onerror=alert(1)>"
    (other / "metrics.json").write_text(json.dumps(record))
    result = runner.invoke(app, ["compare", str(exp), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "out" / "summary.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) == 4  # header, separator, two variants
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text and "two<br>lines \\|" in text


def test_a_400_digit_best_epoch_is_a_skipped_run_not_a_crash(tmp_path: Path, exp: Path):
    run = exp / "l2" / "seed-1"
    (run / "metrics.json").write_text(
        (run / "metrics.json").read_text().replace('"best_epoch": 3', '"best_epoch": ' + "9" * 400)
    )
    result = runner.invoke(app, ["compare", str(exp), "--format", "json"])
    assert result.exit_code == 0, result.output
    skipped = json.loads(result.stdout)["skipped"]
    assert len(skipped) == 1 and "best_epoch" in skipped[0]["reason"]


def test_a_checkpoint_of_other_runs_is_never_decompressed(tmp_path: Path, monkeypatch):
    """Its identity is read first, from its small meta record: the arrays of a checkpoint of other runs (or a
    zip bomb) are never decompressed, and a matching one that would decompress beyond the model is refused."""
    import keras

    from regbench.store import checkpoints
    from regbench.training import checkpoint

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    bomb = {"v0": np.zeros(50_000_000, np.uint8)}  # 50 MB of zeros, about 50 kB compressed
    path = tmp_path / "unit.npz"
    ident = {"runs": ["a"], "format": 2}
    checkpoints.write(path, bomb, {"identity": {"runs": ["other"], "format": 2}})
    opened = []
    monkeypatch.setattr(checkpoints, "read", lambda *a, **k: opened.append(a) or (_ for _ in ()).throw(OSError))
    assert checkpoint.restore(path, ident, model, []).epochs_done == 0
    assert opened == []
    monkeypatch.undo()
    checkpoints.write(path, bomb, {"identity": ident})
    with pytest.raises(ValueError, match="would decompress to"):
        checkpoints.read(path, most_bytes=1_000_000)
    assert checkpoint.restore(path, ident, model, []).epochs_done == 0


def test_the_search_database_url_keeps_the_folder_name_whole(tmp_path: Path):
    """--out 'runs?x': an unquoted sqlite URL ended the path at '?' and Optuna's database landed in the cwd."""
    pytest.importorskip("optuna")
    from sqlalchemy.engine import make_url

    from regbench.study.search import storage_url

    for name in ("runs?x", "a#b", "100%", "two words", "ü"):
        database = tmp_path / name / "search.db"
        assert make_url(storage_url(database)).database == str(database.resolve())


def test_keras_backend_garbage_is_one_line(tmp_path: Path, tiny_study: Path):
    for value, says in (("garbage", "expected tensorflow, jax, torch"), ("x[/y]", "KERAS_BACKEND='x[/y]'")):
        proc = regbench("run", str(tiny_study), "--out", str(tmp_path / "out"), env={"KERAS_BACKEND": value})
        assert proc.returncode == 2 and says in one_error_line(proc.stdout + proc.stderr)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "uri, says",
    [
        ("::::", "a folder (MLflow's file store)"),
        ("file:/tmp/store", "a folder (MLflow's file store)"),
        ("sqlite:///", "no database file named"),
        ("http://[::1", "not a URI"),
        ("http://127.0.0.1:9", "no MLflow server answers there"),
        ("bogus://x", "MLflow has no tracking store bogus:"),
        ("sqlite:////proc/none/m.db", "No such file or directory"),
    ],
)
def test_a_tracking_uri_mlflow_cannot_use_is_one_line(tmp_path: Path, exp: Path, uri: str, says: str, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)
    before = tree_state(tmp_path)
    result = runner.invoke(app, ["export", "mlflow", str(exp), "--tracking-uri", uri])
    assert result.exit_code == 2 and says in one_error_line(result.output)
    assert tree_state(tmp_path) == before


def test_a_server_that_never_answers_is_given_up_on(tmp_path: Path, exp: Path, monkeypatch):
    """A port that accepts and never answers: MLflow waits 120 s per request, 7 times, by default."""
    pytest.importorskip("mlflow")
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    from regbench.output import mlflow as export

    monkeypatch.setattr(export, "SERVER_SECONDS", "1")
    try:
        result = runner.invoke(
            app, ["export", "mlflow", str(exp), "--tracking-uri", f"http://127.0.0.1:{listener.getsockname()[1]}"]
        )
    finally:
        listener.close()
    assert result.exit_code == 2 and "MLflow at http://127.0.0.1:" in one_error_line(result.output)
