"""The CLI as a user drives it: help, validate, run on tiny synthetic data, and bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from regbench.cli import app
from regbench.config.schema import DataConfig, RegularizationConfig, TrainConfig

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_help_lists_commands_with_examples():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    panel = result.output[result.output.index("Commands") :]
    assert re.findall(r"^│ (\w+) ", panel, flags=re.M) == ["run", "validate", "compare", "schema", "export"]
    for command in ("run", "validate", "compare", "schema", "export mlflow"):
        sub = runner.invoke(app, [*command.split(), "--help"])
        assert sub.exit_code == 0, command
        examples = sub.output[sub.output.index("Example") :]  # not the Usage line, which names it anyway
        assert re.search(rf"^\s+regbench {command} \S", examples, flags=re.M), command


@pytest.mark.subprocess
def test_help_and_validate_do_not_import_the_framework():
    code = (
        "import sys\n"
        "from regbench.cli import app\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner()\n"
        "assert r.invoke(app, ['--help']).exit_code == 0\n"
        f"assert r.invoke(app, ['validate', r'{ROOT / 'configs' / 'dropout.yaml'}']).exit_code == 0\n"
        "bad = [m for m in ('tensorflow', 'keras', 'jax', 'torch', 'matplotlib') if m in sys.modules]\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "argv, status, thread",
    [(["validate", str(ROOT / "configs" / "dropout.yaml")], 0, False), (["nosuch"], 2, False), (["--help"], 0, True)],
)
@pytest.mark.subprocess
def test_the_console_entry_point_exits_with_the_status_after_exit_handlers_and_threads(argv, status, thread):
    """main() skips Python's module teardown, not what an exit must do: its status, atexit handlers, flushed
    output, and (by exiting as usual) a thread that Python would wait for."""
    code = (
        "import atexit, sys, threading, time\n"
        "from regbench.cli import main\n"
        "atexit.register(lambda: print('handler ran', flush=False))\n"
        "print('buffered', end=' ')\n"
        + ("threading.Thread(target=lambda: (time.sleep(0.5), print('thread finished'))).start()\n" if thread else "")
        + f"sys.argv = ['regbench', *{argv!r}]\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # output to a pipe stays buffered
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == status, result.stderr
    assert "buffered" in result.stdout and "handler ran" in result.stdout
    assert ("thread finished" in result.stdout) == thread


def test_validate_ok_and_bad(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nregularization:\n  dropout: 1.5\n  l2: -1\n")
    ok = runner.invoke(app, ["validate", str(ROOT / "configs" / "smoke.yaml")])
    assert ok.exit_code == 0 and "ok" in ok.output
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    assert f"Error: {bad}:3: regularization.dropout: expected a rate in [0, 1)" in result.output
    assert f"Error: {bad}:4: regularization.l2: expected a number >= 0.0, got -1" in result.output
    assert "Traceback" not in result.output


def test_run_writes_a_complete_experiment_folder(tmp_path: Path, data_dir: Path, tiny_study: Path):
    out = tmp_path / "outputs"
    result = runner.invoke(app, ["run", str(tiny_study), "--out", str(out), "--set", "train.seeds=[0, 1]"])
    assert result.exit_code == 0, result.output
    [exp] = list(out.iterdir())
    assert exp.name.startswith("tiny-")
    expected = {
        "config.yaml",
        "environment.json",
        "summary.csv",
        "summary.md",
        "summary.json",
        "report.html",
        "loss.png",
        "accuracy.png",
        "accuracy_bars.png",
        "weights.png",
    }
    for variant in ("baseline", "dropout"):
        for seed in (0, 1):
            expected |= {f"{variant}/seed-{seed}/history.csv", f"{variant}/seed-{seed}/metrics.json"}
    assert files_under(exp) == expected

    resolved = yaml.safe_load((exp / "config.yaml").read_text())
    assert resolved["variants"]["dropout"]["regularization"]["dropout"] == [0.3, 0.0]
    assert resolved["variants"]["baseline"]["train"]["seeds"] == [0, 1]
    env = json.loads((exp / "environment.json").read_text())
    assert {"regbench", "keras", "backend", "python", "host"} <= set(env)
    assert (env["jobs"], env["threads"], env["fuse"], env["executor"]) == (1, 1, True, "local")  # fused by default
    assert env["backend_choice"] in ("Keras was already loaded", "KERAS_BACKEND is set")

    metrics = json.loads((exp / "dropout" / "seed-1" / "metrics.json").read_text())
    assert metrics["variant"] == "dropout" and metrics["seed"] == 1 and metrics["status"] == "finished"
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["epochs_run"] == 2 and 1 <= metrics["best_epoch"] <= 2
    assert metrics["generalization_gap"] == metrics["train_accuracy"] - metrics["test_accuracy"]
    assert set(metrics["weights"]["layers"]) == {"dense_1", "dense_2", "output"}
    history = (exp / "baseline" / "seed-0" / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,loss,data_loss,accuracy,val_loss,val_data_loss,val_accuracy,lr"
    assert len(history) == 3

    md = [line for line in (exp / "summary.md").read_text().splitlines() if line.startswith("|")]
    assert md[0].startswith("| variant | n | test acc %")
    assert [line.split("|")[1].strip() for line in md[2:]] == ["baseline", "dropout"]
    assert [line.split("|")[2].strip() for line in md[2:]] == ["2", "2"]
    # The terminal table has the same rows.
    table_rows = [line for line in result.output.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in table_rows] == ["baseline", "dropout"]
    assert (exp / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_second_run_gets_a_new_folder(tmp_path: Path, data_dir: Path, tiny_study: Path):
    out = tmp_path / "outputs"
    args = [
        "run",
        str(tiny_study),
        "--out",
        str(out),
        "--set",
        "train.epochs=1",
        "--set",
        "variants.dropout.train.seeds=[5]",
    ]
    assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, args).exit_code == 0
    assert len(list(out.iterdir())) == 2


def test_malformed_config_exits_2_and_writes_nothing(tmp_path: Path, data_dir: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nmodel:\n  hidden_units: []\ndata:\n  validation_split: 1.0\n")
    out = tmp_path / "outputs"
    result = runner.invoke(app, ["run", str(bad), "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"Error: {bad}:3: model.hidden_units: expected at least 1 item(s), got []",
        f"Error: {bad}:5: data.validation_split: expected a number < 1.0, got 1.0",
    ]
    assert not out.exists()


def test_bad_override_exits_2_and_writes_nothing(tmp_path: Path, data_dir: Path, tiny_study: Path):
    out = tmp_path / "outputs"
    result = runner.invoke(app, ["run", str(tiny_study), "--out", str(out), "--set", "train.epoch=1"])
    assert result.exit_code == 2 and "Error: --set train.epoch: unknown key" in result.output
    assert not out.exists()


def test_missing_data_exits_2_with_the_sources_tried(tmp_path: Path, tiny_study: Path, monkeypatch):
    from regbench.data import sources

    monkeypatch.setattr(sources, "DEBIAN_DIR", tmp_path / "none")
    monkeypatch.setattr(sources, "_from_keras", lambda name: (_ for _ in ()).throw(OSError("offline")))
    monkeypatch.delenv("REGBENCH_DATA_DIR", raising=False)
    out = tmp_path / "outputs"
    result = runner.invoke(app, ["run", str(tiny_study), "--out", str(out)])
    assert result.exit_code == 2
    assert "Error: cannot load dataset 'mnist'" in result.output and "--data-dir" in result.output
    assert not out.exists(), "data are loaded before any folder is created"


def test_schema_describes_every_key_for_editors():
    """`regbench schema` feeds editor completion: every key of every section is there, with its description."""
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "regbench study" and {"data", "model", "regularization", "train"} <= set(
        schema["properties"]
    )
    for name, model in (
        ("DataConfig", DataConfig),
        ("RegularizationConfig", RegularizationConfig),
        ("TrainConfig", TrainConfig),
    ):
        properties = schema["$defs"][name]["properties"]
        assert set(properties) == set(model.model_fields), name
        assert [k for k, v in properties.items() if not v.get("description")] == [], name


def test_run_and_compare_print_the_same_table(tmp_path: Path, data_dir: Path, tiny_study: Path):
    out = tmp_path / "out"
    ran = runner.invoke(app, ["run", str(tiny_study), "--out", str(out), "--seeds", "0,1"])
    assert ran.exit_code == 0, ran.output
    [exp] = list(out.iterdir())
    compared = runner.invoke(app, ["compare", str(exp)])
    assert compared.exit_code == 0, compared.output

    def table(text: str) -> list[str]:
        return [line for line in text.splitlines() if line[:1] in "┃│"]

    assert table(ran.output) == table(compared.output)
    assert "p adj." in table(ran.output)[0] and len(table(ran.output)) == 3
    rows = json.loads(runner.invoke(app, ["compare", str(exp), "--format", "json"]).output)["variants"]
    summary = json.loads((exp / "summary.json").read_text())["variants"]
    assert [r["p_value_adjusted"] for r in rows] == [r["p_value_adjusted"] for r in summary]


def test_version():
    from regbench import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"regbench {__version__}"


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"name: x\ntrain: {epochs: 2}\n\xff\xfe\n", "not UTF-8 text (byte 0xff at offset 27)"),
        (b"name: x\ntrain: {learning_rate: .inf}\n", "train.learning_rate: expected a finite number, got Infinity"),
        (b"name: x\nregularization: {l2: .nan}\n", "regularization.l2: expected a finite number, got NaN"),
        (b"name: x\nregularization: {dropout: .nan}\n", "regularization.dropout: expected a rate in [0, 1)"),
    ],
)
def test_bad_files_and_non_finite_numbers_exit_2_with_one_line(tmp_path: Path, data_dir: Path, content, expected):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in result.output
    assert not out.exists()


def test_bad_flags_exit_2_and_name_the_flag(tmp_path: Path, data_dir: Path, tiny_study: Path):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    result = runner.invoke(app, ["run", str(tiny_study), "--out", str(a_file)])
    assert result.exit_code == 2 and f"Error: --out {a_file}: is a file; expected a folder" in result.output
    result = runner.invoke(app, ["run", str(tiny_study), "--seeds", "a,b", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "Error: --seeds a,b: expected comma-separated whole numbers" in result.output
    assert "variants" not in result.output and not (tmp_path / "o").exists()
    result = runner.invoke(app, ["compare", str(tmp_path), "--out", str(a_file)])
    assert result.exit_code == 2


def test_an_mlp_on_cifar100_shaped_data_has_100_outputs(tmp_path: Path, monkeypatch):
    from conftest import write_cifar

    write_cifar(tmp_path / "data", "cifar100", n_train=120, n_test=40)
    study = tmp_path / "c.yaml"
    study.write_text("name: c\ndata: {dataset: cifar100}\nmodel: {hidden_units: [8]}\ntrain: {epochs: 1}\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(study), "--data-dir", str(tmp_path / "data"), "--out", str(out), "--fuse"])
    assert result.exit_code == 0, result.output
    [metrics] = [json.loads(p.read_text()) for p in out.glob("*/*/seed-*/metrics.json")]
    assert metrics["weights"]["layers"]["output"]["size"] == 8 * 100
    assert metrics["weights"]["layers"]["dense_1"]["size"] == 32 * 32 * 3 * 8


@pytest.mark.parametrize(
    "backend, expected",
    [
        ("foo", "Invalid value for '--backend': Value error, 'foo' is not one of 'auto', 'tensorflow', 'jax', 'torch'"),
        ("jax", "--backend jax: Keras is already loaded with tensorflow in this process"),
    ],
)
def test_a_backend_that_cannot_be_used_is_one_line_exit_2(
    tmp_path, data_dir, tiny_study, monkeypatch, backend, expected
):
    import keras  # noqa: F401 - this process already runs TensorFlow, as a script that imported Keras would

    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(tiny_study), "--out", str(out), "--backend", backend])
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.replace("│", " ").split()) and not out.exists()


def test_an_out_folder_that_is_a_dangling_link_is_one_line_of_error(tmp_path: Path, tiny_study: Path):
    """Before: FileExistsError and a traceback, after loading the study."""
    out = tmp_path / "out"
    out.symlink_to(tmp_path / "gone")
    for args in (["run", str(tiny_study)], ["compare", str(tmp_path), "--out"]):
        result = runner.invoke(app, [*args, *([] if args[0] == "compare" else ["--out"]), str(out)])
        assert result.exit_code == 2, result.output
        assert f"{out} is a symbolic link to {tmp_path / 'gone'}, which does not exist" in result.output
