"""compare: grouping over seeds and experiments, statistics, formats, skipped folders, report.html."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats
from typer.testing import CliRunner

from regbench.cli import app
from regbench.config.schema import VariantConfig
from regbench.store.identity import comparable_config
from regbench.store.samples import sample_grid, sample_run

runner = CliRunner()


def fake_run(
    exp: Path,
    variant: str,
    seed: int,
    acc: float,
    l2: float = 0.0,
    sparsity: float = 0.01,
    backend: str | None = None,
    reference: dict | None = None,
) -> None:
    config = {"regularization": {"l2": l2}, "reference": reference}
    sample_run(exp, variant, seed, acc, config=config, sparsity=sparsity, backend=backend)


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    """Three experiments of one study on three days (one seed each), plus an unrelated study."""
    out = tmp_path / "outputs"
    base_acc = [0.970, 0.971, 0.972]
    l2_acc = [0.976, 0.978, 0.977]
    for day, seed in zip((1, 2, 3), (0, 1, 2), strict=True):
        exp = out / f"l2-2026110{day}-120000"
        fake_run(exp, "baseline", seed, base_acc[seed])
        fake_run(exp, "l2", seed, l2_acc[seed], l2=1e-4, sparsity=0.02)
    other = out / "other-20261104-120000"
    fake_run(other, "baseline", 0, 0.9, l2=0.5)
    return out


def cli(*args: str):
    return runner.invoke(app, ["compare", *args])


def test_pools_seeds_across_experiments_with_mean_std_delta_and_p(outputs: Path):
    result = cli(*map(str, sorted(outputs.glob("l2-*"))), "--baseline", "baseline", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["variant"]: r for r in json.loads(result.output)["variants"]}
    assert set(rows) == {"baseline", "l2"}
    assert rows["l2"]["n"] == 3 and rows["l2"]["seeds"] == "0;1;2"
    assert rows["l2"]["test_accuracy_mean"] == pytest.approx(0.977)
    assert rows["l2"]["test_accuracy_std"] == pytest.approx(0.001)
    assert rows["l2"]["delta_test_accuracy"] == pytest.approx(0.006)
    expected = stats.ttest_ind([0.976, 0.978, 0.977], [0.970, 0.971, 0.972], equal_var=False).pvalue
    assert rows["l2"]["p_value"] == pytest.approx(expected) and rows["l2"]["test_kind"] == "welch"
    assert rows["l2"]["verdict"] == "better" and rows["l2"]["margin"] == pytest.approx(0.002)
    assert rows["baseline"]["test_note"] == "baseline" and rows["baseline"]["verdict"] is None
    result = cli(*map(str, sorted(outputs.glob("l2-*"))), "--baseline", "baseline", "--format", "json", "--paired")
    rows = {r["variant"]: r for r in json.loads(result.output)["variants"]}
    expected = stats.ttest_rel([0.976, 0.978, 0.977], [0.970, 0.971, 0.972]).pvalue  # the runs pair by seed
    assert rows["l2"]["p_value"] == pytest.approx(expected) and rows["l2"]["test_kind"] == "paired"


def test_table_shows_mean_std_delta_ci_effect_size_and_p(outputs: Path):
    result = cli(*map(str, sorted(outputs.glob("l2-*"))), "--baseline", "baseline")
    assert result.exit_code == 0
    header = next(line for line in result.output.splitlines() if line.startswith("┃ variant"))
    assert [c.strip() for c in header.strip("┃").split("┃")][-5:] == ["Δ acc pp", "95 % CI", "g", "p adj.", "verdict"]
    [l2_row] = [line for line in result.output.splitlines() if line.startswith("│ l2 ")]
    cells = [c.strip() for c in l2_row.strip("│").split("│")]
    assert cells[:3] == ["l2", "3", "97.70 ± 0.10"]
    ref = stats.ttest_ind([0.976, 0.978, 0.977], [0.970, 0.971, 0.972], equal_var=False)
    ci = ref.confidence_interval(0.95)
    ci_text = f"[{ci.low * 100:+.2f}, {ci.high * 100:+.2f}]"
    assert cells[-5:] == ["+0.60", ci_text, "+4.80", f"{ref.pvalue:.3f}", "better"]
    [base_row] = [line for line in result.output.splitlines() if line.startswith("│ baseline ")]
    assert [c.strip() for c in base_row.strip("│").split("│")][-5:] == ["+0.00", "—", "—", "baseline", "—"]
    assert "Δ and CI: Welch's t (nothing pairs these runs seed by seed: other seeds or folders)" in result.output
    assert "One error budget, α = 0.05, for every verdict of the table: each row's CI is at 95 %, and its verdict" in (
        " ".join(result.output.split())
    )
    reverse = cli(*map(str, sorted(outputs.glob("l2-*"))), "--baseline", "l2", "--format", "md")
    base_line = next(line for line in reverse.output.splitlines() if line.startswith("| baseline "))
    assert "| -0.60 |" in base_line


def test_json_rows_carry_the_tables_budget_ci_and_effect_size(tmp_path: Path):
    """Three variants of one folder against its baseline on the same seeds: paired by the design, each CI at
    1 - 0.05 / 3 and p times 3 (one error budget for the table), Hedges' g."""
    exp = tmp_path / "grid-20261126-120000"
    values = {"baseline": [0.970, 0.972, 0.971], "a": [0.975, 0.978, 0.976], "b": [0.971, 0.974, 0.970]}
    values["c"] = [0.969, 0.973, 0.972]
    for variant, accs in values.items():
        for seed, acc in enumerate(accs):
            fake_run(exp, variant, seed, acc, l2={"baseline": 0, "a": 1e-4, "b": 1e-3, "c": 1e-2}[variant])
    result = cli(str(exp), "--format", "json")  # no --baseline: the variant named baseline, as run picks it
    assert result.exit_code == 0, result.output
    rows = {r["variant"]: r for r in json.loads(result.output)["variants"]}
    for v in "abc":
        ref = stats.ttest_rel(values[v], values["baseline"])
        ci = ref.confidence_interval(1 - 0.05 / 3)
        assert rows[v]["test_kind"] == "paired" and rows[v]["p_value"] == pytest.approx(ref.pvalue)
        assert rows[v]["p_value_adjusted"] == pytest.approx(min(1.0, 3 * ref.pvalue)) == rows[v]["p_value_holm"]
        assert rows[v]["ci_level"] == pytest.approx(1 - 0.05 / 3) and rows[v]["family_size"] == 3
        assert (rows[v]["delta_ci_low"], rows[v]["delta_ci_high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
        assert rows[v]["effect_size"] is not None
    assert rows["baseline"]["test_note"] == "baseline" and rows["baseline"]["p_value_holm"] is None


def test_same_name_different_config_stays_apart_labelled_by_experiment(outputs: Path):
    result = cli(str(outputs), "--format", "csv")
    assert result.exit_code == 0
    labels = [row["variant"] for row in csv.DictReader(io.StringIO(result.output))]
    assert sorted(labels) == [
        "baseline @ l2-20261101-120000, l2-20261102-120000, l2-20261103-120000",
        "baseline @ other-20261104-120000",
        "l2",
    ]


def test_ambiguous_or_unknown_baseline_is_an_error(outputs: Path):
    result = cli(str(outputs), "--baseline", "baseline")
    assert result.exit_code == 2 and "matches 2 variants" in result.output
    result = cli(str(outputs), "--baseline", "nope")
    assert result.exit_code == 2 and "--baseline nope: no such variant" in result.output


def test_test_option_compares_another_metric(outputs: Path):
    result = cli(*map(str, outputs.glob("l2-*")), "-b", "baseline", "--test", "sparsity", "--format", "md")
    assert result.exit_code == 0
    header = result.output.splitlines()[0]
    assert header.endswith("| Δ \\|w\\|<1e-3 % | 95 % CI | g | p adj. | verdict |")
    l2_line = next(line for line in result.output.splitlines() if line.startswith("| l2 "))
    # every l2 run has sparsity 0.02 against 0.01: a difference that never varies; sparsity has no better side,
    # and it is not the study's primary metric
    assert "| +1.0 | [+1.0, +1.0] | — | — | higher (exploratory) |" in l2_line
    assert "Exploratory: \\|w\\|<1e-3 % is not the study's primary metric (test acc %)" in result.output
    assert cli(str(outputs), "--test", "colour").exit_code == 2


def test_n_below_two_is_marked(outputs: Path):
    result = cli(str(outputs / "l2-20261101-120000"), "--baseline", "baseline", "--format", "md")
    assert result.exit_code == 0
    l2_line = next(line for line in result.output.splitlines() if line.startswith("| l2 "))
    assert l2_line.rstrip().endswith("| n < 2 | — |")


def test_markdown_has_a_header_separator_and_one_row_per_variant(outputs: Path):
    result = cli(*map(str, outputs.glob("l2-*")), "--format", "md", "--only-changed", "--sort", "test_accuracy")
    lines = [line for line in result.output.splitlines() if line.startswith("|")]  # the notes follow the table
    assert lines[0].startswith("| variant | n | regularization.l2 |")
    assert set(lines[1]) <= set("|-:")
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["baseline", "l2"]
    assert lines[2].split("|")[3].strip() == "0.0" and lines[3].split("|")[3].strip() == "0.0001"


def test_sort_reverse(outputs: Path):
    result = cli(*map(str, outputs.glob("l2-*")), "--format", "csv", "--sort", "test_accuracy", "--reverse")
    assert [r["variant"] for r in csv.DictReader(io.StringIO(result.output))] == ["l2", "baseline"]
    assert cli(str(outputs), "--sort", "colour").exit_code == 2


def test_corrupt_and_interrupted_runs_are_skipped_with_a_reason(outputs: Path):
    exp = outputs / "l2-20261101-120000"
    (exp / "l2" / "seed-0" / "metrics.json").write_text('{"variant": "l2", "test_acc')
    interrupted = exp / "baseline" / "seed-9"
    interrupted.mkdir()
    (interrupted / "history.csv").write_text("epoch,loss\n1,0.5\n")
    (outputs / "notes").mkdir()
    result = cli(str(exp), str(outputs / "notes"), "--format", "json")
    assert result.exit_code == 0
    assert f"skipped {exp / 'l2' / 'seed-0'}: corrupt metrics.json" in result.output
    assert f"skipped {interrupted}: unfinished run: no metrics.json" in result.output
    assert f"skipped {outputs / 'notes'}: no run folders" in result.output
    rows = json.loads(result.output[result.output.index("{") :])["variants"]
    assert [r["variant"] for r in rows] == ["baseline"]


def test_no_runs_at_all_exits_2(tmp_path: Path):
    result = cli(str(tmp_path))
    assert result.exit_code == 2
    assert "Error: no finished run folders found" in result.output


def test_out_writes_summaries_figures_and_a_self_contained_report(outputs: Path, tmp_path: Path):
    dest = tmp_path / "report"
    result = cli(*map(str, outputs.glob("l2-*")), "--baseline", "baseline", "--out", str(dest))
    assert result.exit_code == 0, result.output
    names = {p.name for p in dest.iterdir()}
    assert names == {
        "summary.md",
        "summary.csv",
        "summary.json",
        "loss.png",
        "accuracy.png",
        "accuracy_bars.png",
        "weights.png",
        "report.html",
    }
    page = (dest / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 4
    assert "<td><code>regularization.l2</code></td><td>0.0</td><td>0.0001</td>" in page
    assert "http://" not in page and "https://" not in page


@pytest.mark.subprocess
def test_compare_does_not_import_the_framework(outputs: Path):
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom regbench.cli import app\n"
        f"r = CliRunner().invoke(app, ['compare', r'{outputs}'])\nassert r.exit_code == 0, r.output\n"
        "sys.exit(1 if {'tensorflow', 'keras'} & set(sys.modules) else 0)\n"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.fixture
def two_backends(tmp_path: Path) -> Path:
    """One study run on TensorFlow and on JAX: the same configs, three seeds each."""
    out = tmp_path / "bk"
    accs = {
        "tensorflow": {"baseline": [0.970, 0.972, 0.971], "bn": [0.971, 0.973, 0.970]},
        "jax": {"baseline": [0.970, 0.971, 0.972], "bn": [0.979, 0.981, 0.980]},
    }
    for backend, variants in accs.items():
        exp = out / backend / "bn-20261126-120000"
        for variant, values in variants.items():
            for seed, acc in enumerate(values):
                fake_run(exp, variant, seed, acc, l2=0.001 if variant == "bn" else 0.0, backend=backend)
    return out


def test_runs_of_different_backends_are_never_pooled(two_backends: Path):
    result = cli(str(two_backends), "--baseline", "baseline", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["variant"]: r for r in json.loads(result.output)["variants"]}
    assert set(rows) == {"baseline @ tensorflow", "bn @ tensorflow", "baseline @ jax", "bn @ jax"}
    assert all(r["n"] == 3 for r in rows.values())
    assert rows["bn @ jax"]["backend"] == "jax" and rows["bn @ jax"]["runtime"] == "jax 0.10.2, keras 3.15.1"
    # each row is tested against the baseline of its own backend
    assert rows["bn @ jax"]["delta_test_accuracy"] == pytest.approx(0.009)
    assert rows["bn @ tensorflow"]["delta_test_accuracy"] == pytest.approx(0.0003333, abs=1e-6)
    assert rows["baseline @ jax"]["test_note"] == "baseline"
    table = cli(str(two_backends), "--baseline", "baseline")
    assert "kept apart, never pooled: jax 0.10.2, keras 3.15.1; tensorflow 2.21.0, keras 3.15.1" in table.output


def test_across_backends_shows_whether_verdicts_agree(two_backends: Path):
    result = cli(str(two_backends), "--across-backends", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = {r["variant"]: r for r in json.loads(result.output)}
    assert rows["baseline"]["verdicts agree"] == "baseline"
    assert rows["bn"]["verdicts agree"] == "NO: better vs inconclusive"
    p_jax = stats.ttest_rel([0.979, 0.981, 0.980], [0.970, 0.971, 0.972]).pvalue  # one folder, the same seeds
    assert rows["bn"]["p adj. (jax)"] == (f"{p_jax:.3f}" if p_jax >= 0.001 else f"{p_jax:.1e}")
    between = stats.ttest_ind([0.971, 0.973, 0.970], [0.979, 0.981, 0.980], equal_var=False).pvalue
    assert rows["bn"]["p between backends"] == (f"{between:.3f}" if between >= 0.001 else f"{between:.1e}")


def test_across_backends_needs_two_backends(outputs: Path):
    result = cli(*map(str, outputs.glob("l2-*")), "--across-backends")
    assert result.exit_code == 2 and "trained by one runtime" in result.output


def test_a_newer_or_malformed_record_is_reported_not_misread(outputs: Path):
    newer = next(outputs.glob("l2-20261101-*/l2/seed-0/metrics.json"))
    record = json.loads(newer.read_text())
    newer.write_text(json.dumps({**record, "format": 99}))
    broken = next(outputs.glob("l2-20261102-*/l2/seed-1/metrics.json"))
    record = json.loads(broken.read_text())
    del record["best_epoch"]
    broken.write_text(json.dumps(record))
    result = cli(*map(str, sorted(outputs.glob("l2-*"))), "--format", "json")
    assert result.exit_code == 0
    skipped = {s["path"]: s["reason"] for s in json.loads(result.stdout)["skipped"]}
    assert "format 99, written by a newer regbench" in skipped[str(newer.parent)]
    assert skipped[str(broken.parent)] == "corrupt metrics.json: best_epoch: Field required"
    rows = {r["variant"]: r for r in json.loads(result.stdout)["variants"]}
    assert rows["l2"]["n"] == 1


def test_a_published_reference_is_shown_beside_the_measured_mean(tmp_path: Path):
    exp = tmp_path / "paper-20261126-120000"
    ref = {"metric": "test_error", "value": 1.05, "source": "Srivastava et al. 2014, Table 9"}
    for seed, acc in enumerate([0.985, 0.987]):
        fake_run(exp, "dropout_max_norm", seed, acc, reference=ref)
        fake_run(exp, "plain", seed, acc - 0.002)
    result = cli(str(exp), "--format", "md")
    assert result.exit_code == 0, result.output
    header, _, *rows = result.output.splitlines()
    assert "| reference % | measured − ref pp |" in header
    row = next(r for r in rows if r.startswith("| dropout_max_norm "))
    assert "| 1.05 error | +0.35 |" in row  # measured error 1.40 %
    assert "| — | — |" in next(r for r in rows if r.startswith("| plain "))
    record = next(
        r for r in json.loads(cli(str(exp), "--format", "json").output)["variants"] if r["name"] == "dropout_max_norm"
    )
    assert record["reference_source"] == "Srivastava et al. 2014, Table 9"
    assert record["reference_delta"] == pytest.approx(0.35)
    # the reference is not a setting: runs with and without it are the same experiment
    assert "reference" not in comparable_config(
        VariantConfig.model_validate({"reference": ref}).model_dump(mode="json")
    )


def test_a_two_key_sweep_gets_a_heatmap_and_one_key_a_sweep_plot(tmp_path: Path):
    two = tmp_path / "grid-20261126-120000"
    sample_grid(two, [0.0, 0.2, 0.5], [0.0, 0.001])
    out = tmp_path / "report2"
    result = cli(str(two), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "heatmap.png").read_bytes()[:4] == b"\x89PNG" and not (out / "sweep.png").exists()
    page = (out / "report.html").read_text()
    assert "Swept keys per variant" in page and "<th>regularization.dropout</th><th>regularization.l2</th>" in page
    one = tmp_path / "one-20261126-120000"
    sample_grid(one, [0.0, 0.1, 0.3, 0.5], [0.0])
    out = tmp_path / "report1"
    assert cli(str(one), "--out", str(out)).exit_code == 0
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG" and not (out / "heatmap.png").exists()
    # hand-written variants that are no grid (outputs fixture: baseline and l2 over three days) get neither
    assert cli(str(two), str(one), "--out", str(tmp_path / "mixed")).exit_code == 0
    assert not (tmp_path / "mixed" / "heatmap.png").exists() and not (tmp_path / "mixed" / "sweep.png").exists()


@pytest.mark.parametrize("n", [2, 9, 10, 16, 18])
def test_every_variant_gets_its_own_colour_and_none_is_the_baselines_grey(n: int):
    """Figures draw the baseline's reference curve in grey: no variant may wear a grey (tab20's 15th colour
    did), and up to 18 variants never share a colour."""
    from types import SimpleNamespace

    from regbench.output.figures import colours

    palette = colours([SimpleNamespace(label=f"v{i}") for i in range(n)])
    assert len(set(palette.values())) == n
    assert all(len(set(c[:3])) > 1 for c in palette.values())


def _fails_in_a_helper(path: Path) -> None:
    """A figure job that fails in a helper process (``python -c``) and works in the main one."""
    import sys

    if sys.argv[0] == "-c":
        raise RuntimeError("helper failure")
    path.write_bytes(b"drawn here")


@pytest.mark.subprocess
def test_figures_of_a_large_sweep_are_drawn_by_two_processes_as_by_one(tmp_path: Path, monkeypatch):
    """More than six variants: a helper process draws every other figure, byte for byte what one process draws;
    figures whose helper fails are drawn by the main process."""
    from regbench.output import figure_helper as plots

    exp = tmp_path / "grid-20261126-120000"
    sample_grid(exp, [0.0, 0.1, 0.2, 0.3], [0.0, 1e-4, 1e-3, 1e-2])
    real, helped = plots.draw, []
    monkeypatch.setattr(plots, "draw", lambda jobs, parallel=False: helped.append(real(jobs, parallel)))
    assert cli(str(exp), "--out", str(tmp_path / "two")).exit_code == 0
    monkeypatch.setattr(plots, "draw", lambda jobs, parallel=False: real(jobs, parallel=False))
    assert cli(str(exp), "--out", str(tmp_path / "one")).exit_code == 0
    assert helped == [2]  # of five figures: accuracy.png and weights.png
    for name in ("loss.png", "accuracy.png", "accuracy_bars.png", "weights.png", "heatmap.png"):
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name
    paths = [tmp_path / f"f{i}" for i in range(3)]
    assert real([(_fails_in_a_helper, (p,)) for p in paths], parallel=True) == 0
    assert all(p.read_bytes() == b"drawn here" for p in paths)


def test_runs_trained_on_other_data_are_skipped_never_pooled(tmp_path: Path):
    from regbench.analysis.compare import compare

    L2 = {"regularization": {"l2": 1e-4}}
    exp = tmp_path / "s-20261130-120000"
    same = {"source": "/data", "sha256": "a" * 64}
    runs = [sample_run(exp, v, s, 0.97, config=c) for v, c in (("baseline", None), ("l2", L2)) for s in (0, 1)]
    odd = sample_run(exp, "l2", 2, 0.5, config=L2)
    for run, data in [(r, same) for r in runs] + [(odd, {"source": "/elsewhere", "sha256": "b" * 64})]:
        record = json.loads((run / "metrics.json").read_text())
        (run / "metrics.json").write_text(json.dumps({**record, "data": data}))
    result = compare([exp])
    assert [(s.label, s.n) for s in result.summaries] == [("baseline", 2), ("l2", 2)]
    (skipped,) = result.skipped
    assert skipped.path == odd
    assert skipped.reason.startswith("trained on other mnist data (sha256 bbbbbbbbbbbb from /elsewhere) than the 4")


def test_log_axes_label_their_ticks_as_plain_text_not_mathtext():
    """regbench turns mathtext off so that no variant name is read as math; the weight histogram's log axis then
    showed its ticks as raw '$\\mathdefault{10^{-8}}$'."""
    import matplotlib.pyplot as plt

    from regbench.output.figures import _log_axis

    fig, ax = plt.subplots()
    ax.plot([1e-8, 1e-4, 1.0], [1, 2, 3])
    _log_axis(ax, "log")
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    plt.close(fig)
    assert labels and not any("$" in label for label in labels), labels
    assert "0.0001" in labels and "1e-08" in labels
