"""Comparison tables as text: the terminal, Markdown, CSV and JSON views of a comparison's rows."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from regbench.analysis.agreement import p_between, verdict
from regbench.analysis.stats import MOST_SEEDS, POWER
from regbench.analysis.summary import METRICS, Stat, reference_of, runtime_label
from regbench.analysis.verdicts import Row, Verdict
from regbench.config.choices import PRIMARY_METRIC, TestKind
from regbench.store.files import json_safe
from regbench.store.identity import comparable_config
from regbench.store.reader import Skipped


def json_text(rows: list[Row], diff: list[str], skipped: list[Skipped]) -> str:
    return (
        json.dumps(
            json_safe(
                {
                    "variants": records(rows, diff),
                    "skipped": [{"path": str(s.path), "reason": s.reason} for s in skipped],
                }
            ),
            indent=2,
        )
        + "\n"
    )


def table_notes(rows: list[Row]) -> list[str]:
    """The sentences that go under a comparison table: which runtimes, which tests."""
    return [n for n in (runtimes_note(rows), tests_note(rows)) if n]


def runtimes_note(rows: list[Row]) -> str | None:
    """A sentence for under a table whose rows come from more than one runtime, else None."""
    labels = list(dict.fromkeys(runtime_label(r.summary.runtime) for r in rows))
    if len(labels) < 2:
        return None
    return "Runs of different backends, versions or batch orders are kept apart, never pooled: " + "; ".join(labels)


def tests_note(rows: list[Row]) -> str | None:
    """The sentences under a compared table: which test each row's CI and p come from and why, the level the
    verdicts and CIs share, and what a verdict means. None when nothing was compared."""
    tested = [r for r in rows if r.test is not None]
    if not tested:
        return None
    kinds = {kind: [r.summary.label for r in tested if r.kind is kind] for kind in (TestKind.PAIRED, TestKind.WELCH)}
    used = []
    if kinds[TestKind.PAIRED]:
        used.append(
            "paired t over the seeds each row shares with the baseline (runs of one seed share initial weights, "
            "batch order and split)" + _rows(kinds, TestKind.PAIRED)
        )
    if kinds[TestKind.WELCH]:
        why = "Welch's t (nothing pairs these runs seed by seed: other seeds or folders)"
        used.append(why + _rows(kinds, TestKind.WELCH))
    first = tested[0]
    name, _, spec, scale = METRICS[first.metric]
    margin = f"{(first.margin or 0.0) * scale:g}"
    t = first.test
    budget = f"α = {t.alpha:.3g}" + (" per look of rounds of seeds" if t.per_look else "")
    split = f" (α / {t.family} rows)" if t.family > 1 else ""
    text = (
        f"Δ and CI: {'; '.join(used)}. One error budget, {budget}, for every verdict of the table: each row's CI "
        f"is at {_percent(t.confidence)}{split}, and its verdict is read off that CI: better or worse when it "
        f'excludes 0 ("within ±{margin}" when it also lies inside the margin), equivalent when it lies within '
        f"±{margin} ({name}), else inconclusive with the seeds per variant that would decide it ({POWER * 100:.0f} % "
        "power; from the spread and Δ seen to the least favourable the seeds so far allow)"
        + (f"; p adj. is p × {t.family}." if t.family > 1 else ".")
    )
    if any(r.exploratory for r in tested):
        text += (
            f" Exploratory: {name} is not the study's primary metric ({METRICS[PRIMARY_METRIC][0]}), so these "
            "verdicts are outside its error budget; confirm one with a study of its own."
        )
    if any(r.decided_at for r in tested):
        text += " Rows decided at an earlier round of seeds keep that round's test and verdict."
    return text


def _percent(confidence: float) -> str:
    return f"{confidence * 100:.3g} %"


def _rows(kinds: dict[TestKind, list[str]], kind: TestKind) -> str:
    other = TestKind.WELCH if kind is TestKind.PAIRED else TestKind.PAIRED
    return f" ({', '.join(kinds[kind])})" if kinds[other] else ""


def verdict_cell(row: Row) -> str:
    """better (and "within ±m"), worse, equivalent, or inconclusive with the seeds that would decide it; — when
    not compared."""
    t = row.test
    if t is None:
        return "—"
    _, _, spec, scale = METRICS[row.metric]
    if t.verdict is Verdict.INCONCLUSIVE:
        p = t.plan
        if p is None or p.seeds is None:
            text = f"{t.verdict.value} (> {MOST_SEEDS} seeds)"
        elif p.likely is not None and p.likely < p.seeds:
            text = f"{t.verdict.value} ({p.likely}–{p.seeds} seeds)"
        else:
            text = f"{t.verdict.value} ({p.seeds} seeds)"
    elif t.verdict.differs and t.within_margin:
        text = f"{t.verdict.value}, within ±{(row.margin or 0.0) * scale:g}"
    else:
        text = t.verdict.value
    return text + (" (exploratory)" if row.exploratory else "")


def stat_text(key: str, s: Stat) -> str:
    _, _, spec, scale = METRICS[key]
    if s.n == 0:
        return "—"
    mean = s.mean * scale
    text = str(int(mean)) if s.n == 1 and float(mean).is_integer() else spec.format(mean)
    if s.n > 1 and math.isfinite(s.std):
        text += " ± " + spec.format(s.std * scale)
    return text


def p_text(p: float) -> str:
    """A p-value as tables show it: three decimals, or scientific below 0.001."""
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def p_cell(row: Row) -> str:
    """The p-value cell of a row: adjusted for the table (p × rows); a note where there is no test."""
    if row.test is None:
        return row.note or "—"
    return "—" if row.test.p_adjusted is None else p_text(row.test.p_adjusted)


def ci_header(rows: list[Row]) -> str:
    """The CI column's title: its level, when every tested row shares one."""
    levels = {r.test.confidence for r in rows if r.test is not None}
    return f"{_percent(levels.pop())} CI" if len(levels) == 1 else "CI (level: note)"


def table(rows: list[Row], columns: list[str], with_test: bool = False, diff: list[str] | None = None):
    """Header and text cells of the comparison table (shared by the terminal, Markdown and CSV views).

    When a variant carries a published reference, two columns show it and the measured mean's difference."""
    header = ["variant", "n"] + [k for k in diff or []] + [METRICS[c][0] for c in columns]
    tested = rows[0].metric if rows else "test_accuracy"
    name, _, spec, scale = METRICS[tested]
    refs = [reference_of(r.summary) for r in rows]
    if any(refs):
        header += ["reference %", "measured − ref pp"]
    if with_test:
        header += ["Δ acc pp" if tested == "test_accuracy" else f"Δ {name}", ci_header(rows), "g", "p adj.", "verdict"]
    cells_of = []
    for row, ref in zip(rows, refs, strict=True):
        s = row.summary
        flat = comparable_config(s.config)
        cells = [s.label + (" (diverged)" if "diverged" in s.statuses else ""), str(s.n)]
        cells += [json.dumps(flat.get(k)) if not isinstance(flat.get(k), str) else flat[k] for k in diff or []]
        cells += [stat_text(c, s.stats[c]) for c in columns]
        if any(refs):
            what = {"test_error": "error", "test_accuracy": "acc"}
            cells += [f"{ref['value']:.2f} {what[ref['metric']]}", f"{ref['delta']:+.2f}"] if ref else ["—", "—"]
        if with_test:
            signed = spec.replace("{:", "{:+")
            t = row.test
            ci = "—" if t is None else f"[{signed.format(t.ci_low * scale)}, {signed.format(t.ci_high * scale)}]"
            g_cell = "—" if t is None or t.effect_size is None else f"{t.effect_size:+.2f}"
            cells += ["—" if row.delta is None else signed.format(row.delta * scale), ci, g_cell, p_cell(row)]
            cells.append(verdict_cell(row))
        cells_of.append(cells)
    return header, cells_of


def records(rows: list[Row], diff: list[str] | None = None) -> list[dict[str, Any]]:
    """Machine-readable rows: numbers unformatted (accuracy as a fraction), for CSV and JSON."""
    out = []
    for r in rows:
        s = r.summary
        flat = comparable_config(s.config)
        row: dict[str, Any] = {
            "variant": s.label,
            "name": s.variant,
            "experiments": ";".join(s.experiments),
            "n": s.n,
            "seeds": ";".join(str(run.seed) for run in s.runs),
            "status": ";".join(s.statuses),
            "backend": s.runtime.get("backend"),
            "runtime": runtime_label(s.runtime),
        }
        for k in diff or []:
            row[k] = flat.get(k)
        for key in METRICS:
            row[f"{key}_mean"] = s.stats[key].mean
            row[f"{key}_std"] = s.stats[key].std
        ref = reference_of(s)
        if ref:
            row.update({f"reference_{k}": v for k, v in ref.items()})
        if r.compared:
            row.update(_test_record(r))
        out.append(row)
    return out


def markdown_cell(cell: str) -> str:
    """A table cell as Markdown shows it, never as markup: what could open HTML (``<`` before a letter, ``/``,
    ``!`` or ``?``; ``&`` before an entity name; ``>``), a cell separator and a line break are escaped, other
    control characters shown as visible escapes; ``|w|<1e-3`` stays readable as plain text."""
    text = "".join(c if c.isprintable() or c == "\n" else ascii(c)[1:-1] for c in str(cell))
    text = re.sub(r"&(?=#?\w+;)", "&amp;", text)
    text = re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text).replace(">", "&gt;").replace("|", "\\|")
    return text.replace("\r\n", "<br>").replace("\n", "<br>")


def markdown(header: list[str], rows: list[list[str]]) -> str:
    esc = markdown_cell

    lines = ["| " + " | ".join(esc(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def backend_agreement(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """Does a conclusion survive the framework? Per variant: the tested metric, Δ and p against the baseline
    on each backend, whether the verdicts agree, and the p-value of the metric between backends.

    ``rows`` come from analysis.verdicts.judge with a baseline over runs of two or more runtimes. A verdict is
    that backend's comparisons'; verdicts agree when every backend gives the same one.
    The last column is Welch's t-test of the variant's own runs on the first runtime against each other
    runtime: small values mean the backends train this variant differently.
    """
    runtimes = list(dict.fromkeys(runtime_label(r.summary.runtime) for r in rows))
    shorts = {runtime_label(r.summary.runtime): runtime_label(r.summary.runtime, short=True) for r in rows}
    if len(set(shorts.values())) < len(shorts):
        shorts = {r: r for r in runtimes}
    tested = rows[0].metric if rows else "test_accuracy"
    name, _, spec, scale = METRICS[tested]
    header = ["variant"]
    for r in runtimes:
        header += [f"{name} ({shorts[r]})", f"Δ ({shorts[r]})", f"p adj. ({shorts[r]})"]
    header += ["verdicts agree", "p between backends"]
    lines = []
    by_variant: dict[str, dict[str, Row]] = {}
    for row in rows:
        by_variant.setdefault(row.summary.variant, {})[runtime_label(row.summary.runtime)] = row
    for variant, per in by_variant.items():
        cells, verdicts = [variant], set()
        for r in runtimes:
            row = per.get(r)
            if row is None:
                cells += ["—", "—", "—"]
                continue
            delta = "—" if row.delta is None else spec.replace("{:", "{:+").format(row.delta * scale)
            cells += [stat_text(tested, row.summary.stats[tested]), delta, p_cell(row)]
            verdicts.add(verdict(row))
        present = [per[r].summary for r in runtimes if r in per]
        if len(present) < 2:
            cells.append(f"only on {shorts[next(r for r in runtimes if r in per)]}")
        elif verdicts == {"baseline"}:
            cells.append("baseline")
        else:
            cells.append(f"yes: {verdicts.pop()}" if len(verdicts) == 1 else "NO: " + " vs ".join(sorted(verdicts)))
        ps = [p_between(present[0], other, tested) for other in present[1:]]
        cells.append(", ".join(p if isinstance(p, str) else p_text(p) for p in ps) or "—")
        lines.append(cells)
    return header, lines


def _test_record(r: Row) -> dict[str, Any]:
    """A compared row's test as summary.csv/json hold it. ``p_value_holm`` and ``equivalence_p_holm`` keep their
    names for tools that read them; they hold the table's adjusted p-values (see ``p_value_adjusted``)."""
    t, plan = r.test, None if r.test is None else r.test.plan

    def of(name: str) -> Any:
        return None if t is None else getattr(t, name)

    return {
        f"delta_{r.metric}": r.delta,
        "delta_ci_low": of("ci_low"),
        "delta_ci_high": of("ci_high"),
        "ci_level": of("confidence"),
        "effect_size": of("effect_size"),
        "p_value": of("p_value"),
        "p_value_adjusted": of("p_adjusted"),
        "p_value_holm": of("p_adjusted"),
        "test_note": r.note,
        "test_kind": None if r.kind is None else r.kind.value,
        "margin": r.margin,
        "equivalence_p_adjusted": of("equivalence_p"),
        "equivalence_p_holm": of("equivalence_p"),
        "verdict": None if t is None else t.verdict.value,
        "within_margin": of("within_margin"),
        "exploratory": r.exploratory,
        "alpha": of("alpha"),
        "family_size": of("family"),
        "seeds_needed": None if plan is None else plan.seeds,
        "seeds_needed_likely": None if plan is None else plan.likely,
        "decided_at_seeds": len(r.decided_at) or None,
    }
