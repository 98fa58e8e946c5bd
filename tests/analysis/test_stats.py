"""regbench.analysis.stats against scipy.stats: Welch's and the paired t-test, their intervals, two one-sided
tests; the power of the verdict's rule against a simulation of it; Pocock's boundary against known constants."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from regbench.analysis.stats import paired, power, sequential_level, welch
from regbench.config.choices import TestKind


@pytest.mark.parametrize("seed", range(5))
def test_welch_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    a = list(rng.normal(0.975, 0.002, size=3 + seed))
    b = list(rng.normal(0.972, 0.004, size=5))
    ours = welch(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    for level in (0.95, 0.99, 0.9833):
        ci = ref.confidence_interval(level)
        assert ours.interval(level) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))
    pooled = np.sqrt(((len(a) - 1) * np.var(a, ddof=1) + (len(b) - 1) * np.var(b, ddof=1)) / (len(a) + len(b) - 2))
    cohen = (np.mean(a) - np.mean(b)) / pooled
    assert ours.effect_size == pytest.approx(cohen * (1 - 3 / (4 * (len(a) + len(b)) - 9)))


def test_a_difference_that_never_varies_has_a_point_interval():
    w = welch([1.0, 1.0], [1.0, 1.0])
    assert w.delta == 0 and w.p_value is None and w.interval(0.99) == (0.0, 0.0) and w.effect_size is None
    p = paired([2.0, 3.0, 5.0], [1.0, 2.0, 4.0])  # every pair differs by exactly 1
    assert p.interval(0.95) == (1.0, 1.0)


@pytest.mark.parametrize("seed", range(5))
def test_paired_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    common = rng.normal(0.975, 0.003, size=3 + seed)  # what one seed does to both variants
    a = list(common + rng.normal(0.002, 0.001, size=len(common)))
    b = list(common + rng.normal(0.0, 0.001, size=len(common)))
    ours = paired(a, b)
    ref = stats.ttest_rel(a, b)
    assert ours.kind is TestKind.PAIRED and ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert ours.interval(0.95) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))
    assert ours.effect_size == pytest.approx(welch(a, b).effect_size)
    width = ours.interval(0.95)[1] - ours.interval(0.95)[0]
    assert width < np.subtract(*welch(a, b).interval(0.95)[::-1])  # pairing removes the seed's part


def test_equivalence_is_two_one_sided_tests():
    rng = np.random.default_rng(3)
    a, b = list(rng.normal(0.0, 1.0, 12)), list(rng.normal(0.1, 1.0, 12))
    d, margin = welch(a, b), 1.5
    lower = stats.ttest_ind(np.array(a) + margin, b, equal_var=False, alternative="greater").pvalue
    upper = stats.ttest_ind(np.array(a) - margin, b, equal_var=False, alternative="less").pvalue
    assert d.equivalence_p(margin) == pytest.approx(max(lower, upper), rel=1e-9)
    low90, high90 = d.interval(0.90)
    assert (d.equivalence_p(margin) < 0.05) == (-margin < low90 and high90 < margin)  # the 90 % CI rule


@pytest.mark.parametrize("delta, spread, n", [(0.0, 0.2, 4), (0.1, 0.2, 8), (0.2, 0.15, 5), (0.35, 0.3, 3)])
def test_power_is_the_rate_at_which_the_rule_decides(delta, spread, n):
    """power() integrates over the spread the seeds will show; a simulation of the same rule (interval at
    1 - level excludes 0, or lies within ±margin) agrees within its Monte Carlo error."""
    level, margin, sims = 0.05 / 3, 0.2, 40_000
    rng = np.random.default_rng(7)
    d = rng.normal(delta, spread, size=(sims, n))
    mean, se = d.mean(axis=1), d.std(axis=1, ddof=1) / np.sqrt(n)
    half = special.stdtrit(n - 1, 1 - level / 2) * se
    low, high = mean - half, mean + half
    decided = (low > 0) | (high < 0) | ((low > -margin) & (high < margin))
    expected = power(delta, TestKind.PAIRED, (spread,), n, level, margin)
    mc = np.sqrt(expected * (1 - expected) / sims)
    assert abs(decided.mean() - expected) < 4 * mc + 0.005, (decided.mean(), expected)


def test_pocock_boundary_matches_the_published_constants():
    """Pocock (1977): c = 2.178 for 2 equally spaced looks at α 0.05, 2.413 for 5; regbench's doubling rounds
    3, 6, 12, 24 seeds give 0.0160 per look (Bonferroni over the looks would give 0.0125)."""
    assert -special.ndtri(sequential_level((3, 6), 0.05) / 2) == pytest.approx(2.178, abs=2e-3)
    assert -special.ndtri(sequential_level((1, 2, 3, 4, 5), 0.05) / 2) == pytest.approx(2.413, abs=2e-3)
    assert sequential_level((3, 6, 12, 24), 0.05) == pytest.approx(0.0160, abs=2e-4)
    assert sequential_level((3,), 0.05) == 0.05
