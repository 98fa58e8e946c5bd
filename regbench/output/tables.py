"""Comparison tables as text: the terminal, Markdown, CSV and JSON views of analysed groups."""

from __future__ import annotations

import json
import math
from typing import Any

from regbench.analysis.agreement import p_between, verdict
from regbench.analysis.summary import ALPHA, METRICS, Group, reference_of, runtime_label
from regbench.store.files import json_safe
from regbench.store.identity import comparable_config
from regbench.store.reader import Skipped


def json_text(groups: list[Group], diff: list[str], skipped: list[Skipped]) -> str:
    return (
        json.dumps(
            json_safe(
                {
                    "variants": records(groups, diff),
                    "skipped": [{"path": str(s.path), "reason": s.reason} for s in skipped],
                }
            ),
            indent=2,
        )
        + "\n"
    )


def table_notes(groups: list[Group]) -> list[str]:
    """The sentences that go under a comparison table: which runtimes, which tests."""
    return [n for n in (runtimes_note(groups), tests_note(groups)) if n]


def runtimes_note(groups: list[Group]) -> str | None:
    """A sentence for under a table whose rows come from more than one runtime, else None."""
    labels = list(dict.fromkeys(runtime_label(g.runtime) for g in groups))
    if len(labels) < 2:
        return None
    return "Runs of different backends, versions or batch orders are kept apart, never pooled: " + "; ".join(labels)


def tests_note(groups: list[Group]) -> str | None:
    """A sentence for under a compared table: which test each row's CI and p come from, and what a verdict
    means. None when nothing was compared."""
    compared = [g for g in groups if g.test_kind]
    if not compared:
        return None
    kinds = {kind: [g.label for g in compared if g.test_kind == kind] for kind in ("paired", "welch")}
    used = []
    if kinds["paired"]:
        used.append("paired t-test over the seeds each row shares with the baseline" + _rows(kinds, "paired"))
    if kinds["welch"]:
        used.append("Welch's t-test" + _rows(kinds, "welch"))
    name, _, spec, scale = METRICS[compared[0].tested]
    margin = spec.format((compared[0].margin or 0.0) * scale)
    level = f"{compared[0].level or ALPHA:.3g}"
    return (
        f"CI and p: {'; '.join(used)}; p Holm-adjusted over the table. Verdict at α = {level}: equivalent "
        f"when Δ is within ±{margin} ({name}; two one-sided tests), else better or worse when p < {level}, else "
        "inconclusive with the seeds per variant that would decide it at the spread seen."
    )


def _rows(kinds: dict[str, list[str]], kind: str) -> str:
    other = "welch" if kind == "paired" else "paired"
    return f" ({', '.join(kinds[kind])})" if kinds[other] else ""


def verdict_cell(g: Group) -> str:
    """better, worse, equivalent, or inconclusive with the seeds that would decide it; — when not compared."""
    if g.verdict != "inconclusive":
        return g.verdict or "—"
    return f"inconclusive ({'> 1000' if g.seeds_needed is None else g.seeds_needed} seeds)"


def stat_text(key: str, s: dict[str, float]) -> str:
    _, _, spec, scale = METRICS[key]
    if not s or s["n"] == 0:
        return "—"
    mean = s["mean"] * scale
    text = str(int(mean)) if s["n"] == 1 and float(mean).is_integer() else spec.format(mean)
    if s["n"] > 1 and math.isfinite(s["std"]):
        text += " ± " + spec.format(s["std"] * scale)
    return text


def p_text(p: float) -> str:
    """A p-value as tables show it: three decimals, or scientific below 0.001."""
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def p_cell(g: Group) -> str:
    """The p-value cell of a row: Holm-adjusted over the table; a note where there is no test."""
    return (g.test_note or "—") if g.p_value_holm is None else p_text(g.p_value_holm)


def table(groups: list[Group], columns: list[str], with_test: bool = False, diff: list[str] | None = None):
    """Header and text cells of the comparison table (shared by the terminal, Markdown and CSV views).

    When a variant carries a published reference, two columns show it and the measured mean's difference."""
    header = ["variant", "n"] + [k for k in diff or []] + [METRICS[c][0] for c in columns]
    tested = groups[0].tested if groups else "test_accuracy"
    name, _, spec, scale = METRICS[tested]
    refs = [reference_of(g) for g in groups]
    if any(refs):
        header += ["reference %", "measured − ref pp"]
    if with_test:
        header += ["Δ acc pp" if tested == "test_accuracy" else f"Δ {name}", "95 % CI", "g", "p (Holm)", "verdict"]
    rows = []
    for g, ref in zip(groups, refs, strict=True):
        flat = comparable_config(g.config)
        cells = [g.label + (" (diverged)" if "diverged" in g.statuses else ""), str(g.n)]
        cells += [json.dumps(flat.get(k)) if not isinstance(flat.get(k), str) else flat[k] for k in diff or []]
        cells += [stat_text(c, g.stats[c]) for c in columns]
        if any(refs):
            what = {"test_error": "error", "test_accuracy": "acc"}
            cells += [f"{ref['value']:.2f} {what[ref['metric']]}", f"{ref['delta']:+.2f}"] if ref else ["—", "—"]
        if with_test:
            signed = spec.replace("{:", "{:+")
            ci = "—" if g.ci_low is None else f"[{signed.format(g.ci_low * scale)}, {signed.format(g.ci_high * scale)}]"
            g_cell = "—" if g.effect_size is None else f"{g.effect_size:+.2f}"
            cells += ["—" if g.delta is None else signed.format(g.delta * scale), ci, g_cell, p_cell(g)]
            cells.append(verdict_cell(g))
        rows.append(cells)
    return header, rows


def records(groups: list[Group], diff: list[str] | None = None) -> list[dict[str, Any]]:
    """Machine-readable rows: numbers unformatted (accuracy as a fraction), for CSV and JSON."""
    out = []
    for g in groups:
        flat = comparable_config(g.config)
        row: dict[str, Any] = {
            "variant": g.label,
            "name": g.variant,
            "experiments": ";".join(g.experiments),
            "n": g.n,
            "seeds": ";".join(str(r.seed) for r in g.runs),
            "status": ";".join(g.statuses),
            "backend": g.runtime.get("backend"),
            "runtime": runtime_label(g.runtime),
        }
        for k in diff or []:
            row[k] = flat.get(k)
        for key in METRICS:
            row[f"{key}_mean"] = g.stats[key]["mean"]
            row[f"{key}_std"] = g.stats[key]["std"]
        ref = reference_of(g)
        if ref:
            row.update({f"reference_{k}": v for k, v in ref.items()})
        if g.test_note or g.p_value is not None:
            row[f"delta_{g.tested}"] = g.delta
            row["delta_ci_low"], row["delta_ci_high"] = g.ci_low, g.ci_high
            row["effect_size"] = g.effect_size
            row["p_value"] = g.p_value
            row["p_value_holm"] = g.p_value_holm
            row["test_note"] = g.test_note
            row["test_kind"] = g.test_kind
            row["margin"] = g.margin
            row["equivalence_p_holm"] = g.equivalence_p
            row["verdict"] = g.verdict
            row["seeds_needed"] = g.seeds_needed
        out.append(row)
    return out


def markdown(header: list[str], rows: list[list[str]]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def backend_agreement(groups: list[Group]) -> tuple[list[str], list[list[str]]]:
    """Does a conclusion survive the framework? Per variant: the tested metric, Δ and p against the baseline
    on each backend, whether the verdicts agree, and the p-value of the metric between backends.

    ``groups`` come from :func:`summarize` with a baseline over runs of two or more runtimes. A verdict is
    summary.decide's over that backend's comparisons; verdicts agree when every backend gives the same one.
    The last column is Welch's t-test of the variant's own runs on the first runtime against each other
    runtime: small values mean the backends train this variant differently.
    """
    runtimes = list(dict.fromkeys(runtime_label(g.runtime) for g in groups))
    shorts = {runtime_label(g.runtime): runtime_label(g.runtime, short=True) for g in groups}
    if len(set(shorts.values())) < len(shorts):
        shorts = {r: r for r in runtimes}
    tested = groups[0].tested if groups else "test_accuracy"
    name, _, spec, scale = METRICS[tested]
    header = ["variant"]
    for r in runtimes:
        header += [f"{name} ({shorts[r]})", f"Δ ({shorts[r]})", f"p Holm ({shorts[r]})"]
    header += ["verdicts agree", "p between backends"]
    rows = []
    by_variant: dict[str, dict[str, Group]] = {}
    for g in groups:
        by_variant.setdefault(g.variant, {})[runtime_label(g.runtime)] = g
    for variant, per in by_variant.items():
        cells, verdicts = [variant], set()
        for r in runtimes:
            g = per.get(r)
            if g is None:
                cells += ["—", "—", "—"]
                continue
            delta = "—" if g.delta is None else spec.replace("{:", "{:+").format(g.delta * scale)
            cells += [stat_text(tested, g.stats[tested]), delta, p_cell(g)]
            verdicts.add(verdict(g))
        present = [per[r] for r in runtimes if r in per]
        if len(present) < 2:
            cells.append(f"only on {shorts[next(r for r in runtimes if r in per)]}")
        elif verdicts == {"baseline"}:
            cells.append("baseline")
        else:
            cells.append(f"yes: {verdicts.pop()}" if len(verdicts) == 1 else "NO: " + " vs ".join(sorted(verdicts)))
        ps = [p_between(present[0], other, tested) for other in present[1:]]
        cells.append(", ".join(p if isinstance(p, str) else p_text(p) for p in ps) or "—")
        rows.append(cells)
    return header, rows
