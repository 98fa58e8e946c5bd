"""Config loading, defaults, overrides, and every validation error path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regbench.cli import app
from regbench.config.loading import json_schema, load, load_text
from regbench.errors import ConfigError
from regbench.study.plan import plan

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def problems(text: str, overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_text(text, source="study.yaml", overrides=overrides)
    return info.value.problems


def test_every_shipped_study_is_documented_and_every_documented_one_ships():
    docs = (ROOT / "README.md").read_text() + "".join(p.read_text() for p in (ROOT / "docs").glob("*.md"))
    assert CONFIGS, "configs/ holds no study"
    assert [p.name for p in CONFIGS if f"configs/{p.name}" not in docs] == []
    mentioned = set(re.findall(r"configs/(\w+\.yaml)", docs))
    assert sorted(m for m in mentioned if not (ROOT / "configs" / m).is_file()) == []


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates(path: Path):
    """What `regbench validate` says of it, and every planned run distinct (no two variants collapse into one)."""
    experiment = load(path)
    runs = plan(experiment)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    if experiment.search is not None:
        assert f"ok ({experiment.name}: a search of {experiment.search.trials} trials" in result.output
    else:
        assert f"ok ({experiment.name}: {len(experiment.variants)} variant(s), {len(runs)} run(s))" in result.output
    assert len({r.run_id for r in runs}) == len(runs)


def test_dropout_study_is_the_seed_study():
    exp = load(ROOT / "configs" / "dropout.yaml")
    assert list(exp.variants) == ["baseline", "dropout"]
    base, drop = exp.variants["baseline"], exp.variants["dropout"]
    for cfg in (base, drop):
        assert cfg.model.hidden_units == [128, 64]
        assert (cfg.train.optimizer, cfg.train.epochs, cfg.train.batch_size) == ("adam", 10, 32)
        assert cfg.train.learning_rate == pytest.approx(1e-3)
        assert cfg.data.validation_split > 0
    assert base.dropout_rates() == [0.0, 0.0]
    assert drop.dropout_rates() == [0.3, 0.0]


def test_defaults_fill_everything_and_variants_override_sections():
    exp = load_text(
        "name: s\nregularization: {l2: 1.0e-4}\nvariants:\n  a: {}\n  b:\n    regularization: {dropout: 0.5}\n"
    )
    a, b = exp.variants["a"], exp.variants["b"]
    assert a.regularization.l2 == b.regularization.l2 == pytest.approx(1e-4)
    assert a.dropout_rates() == [0.0, 0.0] and b.dropout_rates() == [0.5, 0.5]
    assert a.data.validation_split == 0.1 and a.regularization.early_stopping is None


def test_no_variants_means_one_default_variant():
    exp = load_text("name: s\n")
    assert list(exp.variants) == ["default"]


def test_early_stopping_defaults_monitor_validation_data_loss():
    exp = load_text("name: s\nregularization:\n  early_stopping: {patience: 2}\n")
    es = exp.variants["default"].regularization.early_stopping
    assert (es.monitor, es.patience, es.restore_best_weights) == ("val_data_loss", 2, True)


def test_all_problems_reported_at_once_with_file_line_key_expected_got():
    text = """\
name: bad
data:
  validation_split: 1.0
model:
  hidden_units: []
regularization:
  dropout: 1.5
  l2: -1.0e-4
train:
  epochs: ten
"""
    assert problems(text) == [
        "study.yaml:3: data.validation_split: expected a number < 1.0, got 1.0",
        "study.yaml:5: model.hidden_units: expected at least 1 item(s), got []",
        "study.yaml:7: regularization.dropout: expected a rate in [0, 1) or a list of such rates, got 1.5",
        "study.yaml:8: regularization.l2: expected a number >= 0.0, got -0.0001",
        'study.yaml:10: train.epochs: expected a whole number, got "ten"',
    ]


def test_unknown_key_lists_the_known_ones():
    [message] = problems("name: s\nregularization:\n  l3: 0.1\n")
    assert message.startswith("study.yaml:3: regularization.l3: unknown key; expected one of: dropout, l1, l2")


def test_errors_in_a_variant_name_the_variant_and_its_line():
    text = """\
name: s
variants:
  base: {}
  drop:
    regularization:
      dropout: [0.3, 0.2, 0.1]
  es:
    regularization:
      early_stopping: {patience: -1, monitor: val_acc}
  typo:
    regularisation: {l1: 0.1}
"""
    assert problems(text) == [
        "study.yaml:6: variants.drop.regularization.dropout: expected 2 rates (one per hidden layer in "
        "model.hidden_units), got 3",
        "study.yaml:9: variants.es.regularization.early_stopping.patience: expected a number >= 0, got -1",
        "study.yaml:9: variants.es.regularization.early_stopping.monitor: expected one of 'val_data_loss', "
        "'val_accuracy' or 'val_loss', got \"val_acc\"",
        "study.yaml:11: variants.typo.regularisation: unknown section; did you mean regularization?",
    ]


def test_wrong_default_is_reported_once_not_per_variant():
    found = problems("name: s\ntrain: {batch_size: 0}\nvariants: {a: {}, b: {}, c: {}}\n")
    assert found == ["study.yaml:2: train.batch_size: expected a number >= 1, got 0"]


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "name: s\ndata: {dataset: cifar}\n",
            "data.dataset: expected one of 'mnist', 'fashion_mnist', 'cifar10' or 'cifar100'",
        ),
        ("name: s\ndata: {label_noise: 2}\n", "data.label_noise: expected a number <= 1.0, got 2"),
        ("name: s\nmodel: {hidden_units: [128, 0]}\n", "model.hidden_units: expected a list of layer widths >= 1"),
        (
            "name: s\nregularization: {batchnorm: maybe}\n",
            'regularization.batchnorm: expected true or false, got "maybe"',
        ),
        ("name: s\nregularization: {early_stopping: 5}\n", "regularization.early_stopping: expected a mapping, got 5"),
        ("name: s\ntrain: {seeds: []}\n", "train.seeds: expected at least 1 item(s), got []"),
        ("name: s\ntrain: {optimizer: adagrad}\n", "train.optimizer: expected one of"),
        ("data: {}\n", "name: expected a value (this key is required)"),
        ("name: 'a b'\n", "name: expected letters, digits"),
        ("name: s\nvariants: [a, b]\n", "variants: expected a mapping of variant name -> overrides"),
        ("name: s\nvariants:\n  'a/b': {}\n", "variants.a/b: expected a name of letters"),
    ],
)
def test_each_bad_value_has_a_clear_error(text: str, expected: str):
    found = problems(text)
    assert len(found) == 1 and expected in found[0], found


def test_invalid_yaml_reports_its_line():
    [message] = problems("name: s\nmodel: {hidden_units: [1, 2\n")
    assert message.startswith("study.yaml:") and "invalid YAML" in message


def test_missing_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such file"):
        load(tmp_path / "nope.yaml")


def test_set_overrides_defaults_and_every_variant_that_sets_the_key():
    text = "name: s\ntrain: {epochs: 10}\nvariants:\n  a: {}\n  b:\n    train: {epochs: 30}\n"
    exp = load_text(text, overrides=["train.epochs=2", "regularization.dropout=[0.5, 0.0]"])
    assert exp.variants["a"].train.epochs == exp.variants["b"].train.epochs == 2
    assert exp.variants["b"].dropout_rates() == [0.5, 0.0]


def test_set_can_target_one_variant():
    text = "name: s\nvariants:\n  a: {}\n  b: {}\n"
    exp = load_text(text, overrides=["variants.b.regularization.l2=0.001"])
    assert exp.variants["a"].regularization.l2 == 0 and exp.variants["b"].regularization.l2 == 0.001


def test_set_early_stopping_field_creates_the_section():
    exp = load_text("name: s\n", overrides=["regularization.early_stopping.patience=4"])
    assert exp.variants["default"].regularization.early_stopping.patience == 4


@pytest.mark.parametrize(
    "item, expected",
    [
        ("train.epoch=2", "--set train.epoch: unknown key"),
        ("train=2", "--set train: expected a mapping, got 2"),
        ("epochs", "--set epochs: expected dotted.key=value"),
        ("variants.a.train.nope=1", "--set variants.a.train.nope: unknown key"),
    ],
)
def test_bad_set_is_an_error(item: str, expected: str):
    [message] = problems("name: s\n", overrides=[item])
    assert message.startswith(expected)


def test_set_with_wrong_type_is_a_validation_error():
    [message] = problems("name: s\n", overrides=["train.epochs=many"])
    assert message == '--set train.epochs: expected a whole number, got "many"'


def test_json_schema_comes_from_the_same_models():
    schema = json_schema()
    assert schema["additionalProperties"] is False
    assert "regularization" in schema["properties"]
    reg = schema["$defs"]["RegularizationConfig"]["properties"]
    assert reg["l2"]["minimum"] == 0


def test_the_sweep_benchmark_is_the_plain_loops_grid():
    """bench/sweep.yaml and bench/baseline.py --model sweep train the same 48 runs."""
    import importlib.util

    from regbench.config.loading import load

    spec = importlib.util.spec_from_file_location("baseline", ROOT / "bench" / "baseline.py")
    baseline = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(baseline)
    study = load(ROOT / "bench" / "sweep.yaml")
    grid = {(v.regularization.dropout, v.regularization.l2, tuple(v.train.seeds)) for v in study.variants.values()}
    assert grid == {(d, l2, (0, 1, 2)) for d in baseline.SWEEP_DROPOUT for l2 in baseline.SWEEP_L2}
    v = next(iter(study.variants.values()))
    assert (v.data.train_subset, v.train.epochs, v.train.batch_size) == (baseline.SWEEP_SUBSET, 3, 32)
    assert v.model.hidden_units == [128, 64]


def test_the_gpu_sweep_is_256_runs_fused_into_one_model():
    from regbench.config.loading import load
    from regbench.execution.units import Task, make_units
    from regbench.study.plan import plan
    from regbench.training.fusion import fusion_key

    runs = plan(load(ROOT / "bench" / "gpu_sweep.yaml"))
    assert len(runs) == 256
    tasks = [Task(r.key, r.variant, r.seed, r.config, r.run_id, None) for r in runs]
    assert len({fusion_key(r.config) for r in runs}) == 1
    assert [len(unit) for unit in make_units(tasks, fuse=True, max_branches=256)] == [256]


def test_the_cnn_benchmark_trains_configs_cnn_baseline():
    """bench/cnn_baseline.yaml is configs/cnn.yaml's baseline alone: the benchmark times the study's model."""
    from regbench.config.loading import load

    bench = load(ROOT / "bench" / "cnn_baseline.yaml").variants["baseline"]
    study = load(ROOT / "configs" / "cnn.yaml").variants["baseline"]
    assert bench == study


def test_set_on_a_variant_the_study_does_not_have_is_an_error_with_close_names():
    """Before, a typo planned a new variant: --set variants.basline.train.epochs=1 gave 9 runs instead of 6."""
    text = (
        "name: s\ntrain: {seeds: [0, 1, 2]}\nvariants:\n  baseline: {}\n  dropout: {regularization: {dropout: 0.3}}\n"
    )
    assert problems(text, ["variants.basline.train.epochs=1"]) == [
        "--set variants.basline.train.epochs: this study has no variant 'basline'; did you mean baseline?"
    ]
    assert problems(text, ["variants.xyz.train.epochs=1"]) == [
        "--set variants.xyz.train.epochs: this study has no variant 'xyz'; its variants: baseline, dropout"
    ]
    assert load_text(text, overrides=["variants.baseline.train.epochs=1"]).variants["baseline"].train.epochs == 1


def test_sizes_that_could_never_train_are_bad_input():
    """Before, epochs of 10^29 passed validation and seeds >= 2^32 failed only at training."""
    text = "name: s\ntrain: {epochs: 100000000000000000000000000000, seeds: [0, 4294967296]}\ndata: {seed: -1}\n"
    assert sorted(problems(text)) == [
        "study.yaml:2: train.epochs: expected a number <= 10000, got 100000000000000000000000000000",
        "study.yaml:2: train.seeds.1: expected a number <= 4294967295, got 4294967296",
        "study.yaml:3: data.seed: expected a number >= 0, got -1",
    ]


def test_variant_names_are_taken_as_written():
    """YAML 1.1 read off/on/yes as booleans: three variants became two runs named False and True."""
    text = "name: s\nvariants:\n  off: {}\n  on: {}\n  yes: {}\n  1.0: {}\n  '1': {}\n"
    assert list(load_text(text).variants) == ["off", "on", "yes", "1.0", "1"]


@pytest.mark.parametrize(
    "variants, line, key",
    [
        ("  a: {}\n  a: {regularization: {l2: 0.1}}\n", 4, "a"),  # the last one won, silently
        ("  '1': {}\n  1: {}\n", 4, "1"),  # collapsed into one
    ],
)
def test_a_variant_named_twice_is_an_error_with_both_lines(variants: str, line: int, key: str):
    assert problems("name: s\nvariants:\n" + variants) == [
        f"study.yaml:{line}: invalid YAML: key {key!r} again (first on line 3); each key once"
    ]


def test_sweep_values_that_would_share_a_variant_name_are_an_error():
    """data.dir values differing only in / and _ gave 4 of 6 variants, silently."""
    text = "name: s\nsweep:\n  data.dir: [a/b, a_b]\n  train.seeds: [0]\n"
    [message] = problems(text)
    assert message.startswith("study.yaml:2: sweep: two combinations of values are both named 'dir=a_b'")


def test_yaml_bombs_and_deep_nesting_are_one_line_each():
    """An 8-line alias bomb took 8 s and 1.6 GB and printed 28 MB of error text; 700 nested brackets ended in a
    RecursionError (exit 1)."""
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]" for p, n in zip("abcdef", "bcdefg", strict=True)]
    bomb = "name: bomb\n" + "\n".join(lines) + "\n"
    assert problems(bomb) == [
        "study.yaml:3: invalid YAML: aliases (*name) are not supported in a study file; write the value out"
    ]
    deep = "name: deep\nx: " + "[" * 700 + "]" * 700 + "\n"
    assert problems(deep) == ["study.yaml: invalid YAML: nested too deeply for a study file"]


def test_a_dry_run_shows_what_each_set_changed_and_in_which_variants(tmp_path):
    """On ca983a6 --dry-run could not show that an early-stopping --set turned it on for the baseline too."""
    from typer.testing import CliRunner

    from regbench.cli import app

    args = ["run", str(ROOT / "configs" / "dropout.yaml"), "--dry-run", "--set", "train.epochs=3"]
    args += ["--set", "regularization.early_stopping.patience=1", "--set", "variants.dropout.train.epochs=2"]
    args += ["--set", "data.seed=0", "--set", "output.checkpoint=false"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("--set")]
    assert lines == [
        "--set train.epochs=3: train.epochs: 10 → 3 in every variant (2)",
        '--set regularization.early_stopping.patience=1: regularization.early_stopping: null → {"patience": 1, '
        '"min_delta": 0.0, "monitor": "val_data_loss", "restore_best_weights": true, "start_from_epoch": 0} in '
        "every variant (2)",
        "--set variants.dropout.train.epochs=2: train.epochs: 3 → 2 in dropout",
        "--set data.seed=0: changed nothing",
        "--set output.checkpoint=false: output.checkpoint: true → false (study-wide)",
    ]
