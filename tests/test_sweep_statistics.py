"""The aggregate statistics of lab report against exact values on small inputs."""

from __future__ import annotations

import numpy as np
import pytest

from lab.sweeps import statistics as st


def test_iqm_is_the_mean_of_the_middle_half():
    assert st.iqm(np.arange(1.0, 9.0)[:, None]) == 4.5  # 3, 4, 5, 6
    assert st.iqm(np.array([[0.0], [10.0], [10.0], [1000.0]])) == 10.0  # outliers do not move it
    assert st.iqm(np.array([[1.0, 2.0], [3.0, 4.0]])) == 2.5  # all runs of all tasks together


def test_mean_and_median_of_all_scores():
    scores = np.array([[1.0], [2.0], [10.0]])
    assert st.mean(scores) == pytest.approx(13 / 3)
    assert st.median(scores) == 2.0


def test_bootstrap_of_a_constant_is_that_constant():
    estimate = st.bootstrap_ci(np.full(7, 3.25), st.iqm, reps=200)
    assert (estimate.value, estimate.low, estimate.high) == (3.25, 3.25, 3.25)


@pytest.mark.parametrize("seed", range(5))
def test_bootstrap_interval_holds_the_true_mean(seed):
    sample = np.random.default_rng(100 + seed).normal(loc=2.0, scale=1.0, size=400)
    estimate = st.bootstrap_ci(sample, st.mean, reps=1000, seed=seed)
    assert estimate.low < 2.0 < estimate.high
    assert estimate.low < estimate.value < estimate.high
    assert estimate.high - estimate.low < 0.4  # about 4 standard errors (2 * 1.96 / sqrt(400))


def test_bootstrap_is_stratified_over_tasks():
    # Task 0 is always 0 and task 1 always 1: every resample keeps each task's own runs, so the
    # mean is exactly 0.5 in every one of them (an unstratified bootstrap would wander).
    scores = np.column_stack([np.zeros(5), np.ones(5)])
    estimate = st.bootstrap_ci(scores, st.mean, reps=300)
    assert (estimate.low, estimate.high) == (0.5, 0.5)


def test_probability_of_improvement_exact_values():
    a = np.array([1.0, 2.0, 3.0])
    assert st.probability_of_improvement(a, a) == 0.5
    assert st.probability_of_improvement(a + 10, a) == 1.0
    assert st.probability_of_improvement(a, a + 10) == 0.0
    # [2, 4] vs [1, 3]: pairs (2>1), (2<3), (4>1), (4>3): 3 of 4
    assert st.probability_of_improvement(np.array([2.0, 4.0]), np.array([1.0, 3.0])) == 0.75
    # ties count a half: [1, 1] vs [1, 0] -> (0.5 + 1 + 0.5 + 1) / 4
    assert st.probability_of_improvement(np.array([1.0, 1.0]), np.array([1.0, 0.0])) == 0.75


def test_probability_of_improvement_interval():
    rng = np.random.default_rng(0)
    x, y = rng.normal(1.0, 1.0, 50), rng.normal(0.0, 1.0, 50)
    estimate = st.probability_of_improvement_ci(x, y, reps=500)
    assert estimate.low < estimate.value < estimate.high
    assert estimate.low > 0.5  # one standard deviation apart: clearly better
    same = st.probability_of_improvement_ci(x, x, reps=500)
    assert same.value == 0.5 and same.low < 0.5 < same.high


def test_performance_profile_counts_runs_above_each_threshold():
    scores = np.array([0.0, 1.0, 2.0, 3.0])
    fraction, low, high = st.performance_profile(scores, np.array([-1.0, 0.0, 1.5, 3.0]), reps=200)
    assert fraction.tolist() == [1.0, 0.75, 0.5, 0.0]
    assert np.all(low <= fraction) and np.all(fraction <= high)
    assert low[0] == high[0] == 1.0 and low[-1] == high[-1] == 0.0  # nobody below -1 or above 3


def test_curve_iqm_per_point():
    curves = np.array([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0], [0.0, 100.0]])
    center, low, high = st.curve_iqm(curves, reps=200)
    assert center.tolist() == [0.0, 2.5]
    assert low[0] == high[0] == 0.0
    assert low[1] <= 2.5 <= high[1]


def test_iqm_and_median_of_eight_numbers_differ_as_defined():
    scores = np.array([0.0, 0.0, 0.0, 1.0, 3.0, 3.0, 3.0, 100.0])
    assert st.iqm(scores[:, None]) == 1.75  # the middle four: 0, 1, 3, 3
    assert st.median(scores[:, None]) == 2.0
    center, _, _ = st.curve_iqm(np.column_stack([scores, scores + 1.0]), reps=200)
    assert center.tolist() == [1.75, 2.75]
    # the median is over all runs of all tasks together: of 1, 2, 3, 10, 20, 30
    assert st.median(np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])) == 6.5


def test_bootstrap_samples_are_trimmed_too():
    # 15 zeros and one outlier: a resample's IQM is nonzero only if it draws the outlier over 4 times
    # of 16 (a chance below 1e-3), so the whole interval is 0; a mean would wander up to hundreds
    scores = np.r_[np.zeros(15), 1000.0]
    assert st.bootstrap_ci(scores, st.iqm, reps=2000).as_dict() == {"value": 0.0, "low": 0.0, "high": 0.0}
    center, low, high = st.curve_iqm(np.column_stack([scores, scores]), reps=2000)
    assert center.tolist() == low.tolist() == high.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("confidence", "z"), [(0.95, 1.960), (0.9, 1.645), (0.5, 0.674)])
def test_bootstrap_interval_width_matches_its_confidence(seed, confidence, z):
    # the mean of 400 normal draws: the percentile interval is about +-z standard errors wide
    sample = np.random.default_rng(100 + seed).normal(loc=2.0, scale=1.0, size=400)
    estimate = st.bootstrap_ci(sample, st.mean, reps=4000, confidence=confidence, seed=seed)
    ratio = (estimate.high - estimate.low) / (sample.std(ddof=1) / np.sqrt(400))
    assert ratio == pytest.approx(2 * z, rel=0.05)
    if confidence == 0.95:  # the default
        assert st.bootstrap_ci(sample, st.mean, reps=4000, seed=seed) == estimate


def test_resampling_draws_each_tasks_runs_independently():
    scores = np.column_stack([np.arange(8.0), np.arange(8.0)])
    samples = st.resample(scores, 200, np.random.default_rng(0))
    assert samples.shape == (200, 8, 2)
    assert set(np.unique(samples)) <= set(range(8))
    assert (samples[:, :, 0] != samples[:, :, 1]).mean() > 0.5  # not the same rows for every task


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_one_non_finite_score_is_refused(bad):
    with pytest.raises(ValueError, match="scores must be finite"):
        st.bootstrap_ci(np.array([1.0, 2.0, bad]), st.iqm, reps=100)
    with pytest.raises(ValueError, match="scores must be finite"):
        st.probability_of_improvement(np.array([1.0, 2.0]), np.array([bad, 0.0]))
