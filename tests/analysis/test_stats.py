"""regbench.stats against scipy.stats: Welch's test, its confidence interval, Holm's adjustment."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from regbench.analysis.stats import holm, welch


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
