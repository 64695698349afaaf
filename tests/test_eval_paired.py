"""Paired comparison of two methods over the same users: bootstrap intervals and the exact McNemar test."""

import math

import numpy as np
import pytest

from lcrec.evaluation.paired import mcnemar_exact, paired_bootstrap


def test_identical_methods_have_a_zero_width_interval():
    values = np.random.default_rng(0).random(500)
    result = paired_bootstrap(values, values, resamples=500)
    assert result.difference == 0 and result.difference_low == 0 and result.difference_high == 0
    assert result.ratio == pytest.approx(1) and result.ratio_low == pytest.approx(1)
    assert result.ratio_high == pytest.approx(1)


def test_interval_is_paired_and_matches_the_normal_approximation():
    rng = np.random.default_rng(1)
    shared = rng.random(4000)
    a = shared + 0.05 * rng.standard_normal(4000) + 0.01
    b = shared + 0.05 * rng.standard_normal(4000)
    result = paired_bootstrap(a, b, resamples=4000, seed=3)
    assert result.difference == pytest.approx(a.mean() - b.mean())
    assert result.ratio == pytest.approx(a.mean() / b.mean())
    # The per-user differences drive the width: 1.96 sd(a - b) / sqrt(n). Unpaired it would be about 6x wider.
    half_width = (result.difference_high - result.difference_low) / 2
    assert half_width == pytest.approx(1.96 * np.std(a - b) / math.sqrt(4000), rel=0.1)
    assert result.difference_low < result.difference < result.difference_high
    assert result.ratio_low < result.ratio < result.ratio_high
    assert result.users == 4000


def test_the_seed_fixes_the_interval():
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    assert paired_bootstrap(a, b, resamples=300, seed=5) == paired_bootstrap(a, b, resamples=300, seed=5)


def test_ratio_is_undefined_when_b_never_scores():
    result = paired_bootstrap([1.0, 0.0, 1.0], [0.0, 0.0, 0.0], resamples=100)
    assert result.difference == pytest.approx(2 / 3)
    assert math.isnan(result.ratio) and math.isnan(result.ratio_low)


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [([1.0, 0.0], [1.0], "one length"), ([], [], "no users"), ([[1.0]], [[1.0]], "1-d")],
)
def test_bootstrap_refuses_unpaired_input(a, b, message):
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(a, b)


def test_bootstrap_refuses_bad_settings():
    with pytest.raises(ValueError, match="resamples"):
        paired_bootstrap([1.0], [1.0], resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap([1.0], [1.0], confidence=1.0)


def test_mcnemar_counts_discordant_users_and_gives_the_exact_p_value():
    a = [1] * 3 + [0] * 10 + [1] * 5 + [0] * 7
    b = [0] * 3 + [1] * 10 + [1] * 5 + [0] * 7
    only_a, only_b, p_value = mcnemar_exact(a, b)
    assert (only_a, only_b) == (3, 10)
    expected = 2 * sum(math.comb(13, k) for k in range(4)) / 2**13
    assert p_value == pytest.approx(expected)
    assert p_value == pytest.approx(0.0923, abs=1e-4)
    assert mcnemar_exact(b, a)[2] == pytest.approx(p_value)


def test_mcnemar_without_discordant_users_or_with_balanced_ones_is_one():
    assert mcnemar_exact([1, 0, 1], [1, 0, 1]) == (0, 0, 1.0)
    assert mcnemar_exact([1, 0], [0, 1])[2] == 1.0


def test_mcnemar_needs_hits():
    with pytest.raises(ValueError, match="0/1"):
        mcnemar_exact([0.5, 1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="one length"):
        mcnemar_exact([1, 0], [1])
