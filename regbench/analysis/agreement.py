"""TODO."""

from __future__ import annotations

import math

from regbench.analysis.stats import welch
from regbench.analysis.summary import METRICS, Group, metric_values, runtime_label
from regbench.output.tables import fmt_p, fmt_pvalue, fmt_stat


def backend_agreement(groups: list[Group], alpha: float = 0.05) -> tuple[list[str], list[list[str]]]:
    """Does a conclusion survive the framework? Per variant: the tested metric, Δ and p against the baseline
    on each backend, whether the verdicts agree, and the p-value of the metric between backends.

    ``groups`` come from :func:`summarize` with a baseline over runs of two or more runtimes. A verdict is the
    sign of Δ and whether the Holm-adjusted p (over that backend's comparisons) is < ``alpha``; verdicts agree
    when every backend gives the same one. The last column
    is Welch's t-test of the variant's own runs on the first runtime against each other runtime: small values
    mean the backends train this variant differently.
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
            cells += [fmt_stat(tested, g.stats[tested]), delta, fmt_p(g)]
            if g.test_note == "baseline":
                verdicts.add("baseline")
            elif g.p_value_holm is not None and g.delta is not None:
                verdicts.add(("better" if g.delta > 0 else "worse") if g.p_value_holm < alpha else "no difference")
            else:
                verdicts.add(g.test_note or "untested")
        present = [per[r] for r in runtimes if r in per]
        if len(present) < 2:
            cells.append(f"only on {shorts[next(r for r in runtimes if r in per)]}")
        elif verdicts == {"baseline"}:
            cells.append("baseline")
        else:
            cells.append(f"yes: {verdicts.pop()}" if len(verdicts) == 1 else "NO: " + " vs ".join(sorted(verdicts)))
        ps = []
        first = [v for v in metric_values(present[0], tested) if math.isfinite(v)]
        for other in present[1:]:
            second = [v for v in metric_values(other, tested) if math.isfinite(v)]
            if len(first) < 2 or len(second) < 2:
                ps.append("n < 2")
                continue
            p = welch(first, second).p_value
            ps.append("no variance" if p is None else fmt_pvalue(p))
        cells.append(", ".join(ps) or "—")
        rows.append(cells)
    return header, rows
