"""regbench.stats against scipy.stats: Welch's test, its confidence interval, Holm's adjustment."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from regbench.analysis.stats import holm, paired, welch


@pytest.mark.parametrize("seed", range(5))
def test_welch_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    a = list(rng.normal(0.975, 0.002, size=3 + seed))
    b = list(rng.normal(0.972, 0.004, size=5))
    ours = welch(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert (ours.ci_low, ours.ci_high) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))
    assert ours.ci_low <= ours.delta <= ours.ci_high
    pooled = np.sqrt(((len(a) - 1) * np.var(a, ddof=1) + (len(b) - 1) * np.var(b, ddof=1)) / (len(a) + len(b) - 2))
    cohen = (np.mean(a) - np.mean(b)) / pooled
    assert ours.effect_size == pytest.approx(cohen * (1 - 3 / (4 * (len(a) + len(b)) - 9)))


def test_no_variance_has_no_test():
    w = welch([1.0, 1.0], [1.0, 1.0])
    assert w.delta == 0 and w.p_value is None and w.ci_low is None and w.effect_size is None


def test_holm_step_down():
    # m = 4: sorted p 0.01, 0.02, 0.03, 0.5 -> 0.04, 0.06, 0.06 (monotone), 0.5; None stays out of the family
    assert holm([0.03, None, 0.01, 0.5, 0.02]) == pytest.approx([0.06, None, 0.04, 0.5, 0.06])
    assert holm([0.6, 0.7]) == [1.0, 1.0]


@pytest.mark.parametrize("seed", range(5))
def test_paired_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    common = rng.normal(0.975, 0.003, size=3 + seed)  # what one seed does to both variants
    a = list(common + rng.normal(0.002, 0.001, size=len(common)))
    b = list(common + rng.normal(0.0, 0.001, size=len(common)))
    ours = paired(a, b)
    ref = stats.ttest_rel(a, b)
    assert ours.kind == "paired" and ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert (ours.ci_low, ours.ci_high) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))
    assert ours.effect_size == pytest.approx(welch(a, b).effect_size)
    assert ours.ci_high - ours.ci_low < welch(a, b).ci_high - welch(a, b).ci_low  # pairing removes the seed's part


def test_equivalence_is_two_one_sided_tests():
    rng = np.random.default_rng(3)
    a, b = list(rng.normal(0.0, 1.0, 12)), list(rng.normal(0.1, 1.0, 12))
    d, margin = welch(a, b), 1.5
    lower = stats.ttest_ind(np.array(a) + margin, b, equal_var=False, alternative="greater").pvalue
    upper = stats.ttest_ind(np.array(a) - margin, b, equal_var=False, alternative="less").pvalue
    assert d.equivalence_p(margin) == pytest.approx(max(lower, upper), rel=1e-9)
    low90, high90 = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.90)
    assert (d.equivalence_p(margin) < 0.05) == (-margin < low90 and high90 < margin)  # the 90 % CI rule


def test_seeds_needed_is_where_the_test_would_decide():
    from regbench.analysis.stats import seeds_needed

    d = paired([1.0, 2.0, 4.0], [0.0, 1.0, 3.0])  # differences exactly 1.0: no spread, nothing to plan
    assert seeds_needed(d, margin=0.5) is None
    d = paired([1.0, 2.5, 0.2], [0.0, 0.4, 0.1])  # Δ 1.07, sd of differences 0.99
    n = seeds_needed(d, margin=0.2)
    sd = d.spreads[0]
    assert abs(d.delta) > stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n)
    assert abs(d.delta) <= stats.t.ppf(0.975, n - 2) * sd / np.sqrt(n - 1)
    assert seeds_needed(welch([0.0, 1.0, 2.0], [0.0, 1.0, 2.0]), margin=1e-6) is None  # Δ = 0, margin ~ 0
