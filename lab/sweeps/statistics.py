"""Aggregate statistics over runs, as Agarwal et al. (2021), "Deep RL at the Edge of the Statistical
Precipice" (the ``rliable`` library) recommend: interquartile mean, stratified bootstrap confidence
intervals, probability of improvement and performance profiles.

Scores are matrices of shape ``(runs, tasks)``; a sweep of one environment has one task. The
bootstrap is stratified: each task's runs are resampled with replacement on their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

Statistic = Callable[[np.ndarray], np.ndarray]  # (..., runs, tasks) -> (...)


def _flat(scores: np.ndarray) -> np.ndarray:
    return scores.reshape(*scores.shape[:-2], -1)


def mean(scores: np.ndarray) -> np.ndarray:
    return np.mean(_flat(scores), axis=-1)


def median(scores: np.ndarray) -> np.ndarray:
    """The median of all runs' scores (rliable's median is over tasks, which one task makes the mean)."""
    return np.median(_flat(scores), axis=-1)


def iqm(scores: np.ndarray) -> np.ndarray:
    """Interquartile mean: the mean of the middle half of all scores (25% trimmed from each end, as
    ``scipy.stats.trim_mean`` and rliable trim)."""
    return stats.trim_mean(_flat(scores), proportiontocut=0.25, axis=-1)


AGGREGATES: dict[str, Statistic] = {"mean": mean, "median": median, "iqm": iqm}


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its stratified bootstrap confidence interval."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def as_matrix(scores: np.ndarray) -> np.ndarray:
    """``scores`` as a ``(runs, tasks)`` matrix of finite numbers (a NaN would count as a loss in
    every comparison, and an infinity would make every interval NaN)."""
    scores = np.asarray(scores, dtype=float)
    scores = scores[:, None] if scores.ndim == 1 else scores
    if scores.ndim != 2 or scores.shape[0] == 0:
        raise ValueError(f"scores must be a non-empty (runs, tasks) matrix; got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite numbers; leave out the runs without a finite score")
    return scores


def resample(scores: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """``reps`` stratified bootstrap samples, shape ``(reps, runs, tasks)``: each task's runs drawn
    with replacement, independently of the other tasks'."""
    runs, tasks = scores.shape
    rows = rng.integers(0, runs, size=(reps, runs, tasks))
    return np.take_along_axis(scores[None], rows, axis=1)


def bootstrap_ci(
    scores: np.ndarray, statistic: Statistic, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Estimate:
    """``statistic`` of ``scores`` with its percentile bootstrap interval (stratified over tasks)."""
    scores = as_matrix(scores)
    samples = statistic(resample(scores, reps, np.random.default_rng(seed)))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Estimate(float(statistic(scores)), float(low), float(high))


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y): the chance that a run of X scores above a run of Y on the same task, ties counting
    a half (the Mann-Whitney U statistic over ``runs_x * runs_y``), averaged over tasks."""
    x, y = as_matrix(x), as_matrix(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same tasks; got {x.shape[1]} and {y.shape[1]}")
    return float(np.mean(_poi(x[None], y[None])))


def _poi(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) of batches ``(..., runs_x, tasks)`` and ``(..., runs_y, tasks)``, shape ``(...)``."""
    above = (x[..., :, None, :] > y[..., None, :, :]).mean(axis=(-3, -2))
    ties = (x[..., :, None, :] == y[..., None, :, :]).mean(axis=(-3, -2))
    return np.mean(above + 0.5 * ties, axis=-1)


def probability_of_improvement_ci(
    x: np.ndarray, y: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Estimate:
    x, y = as_matrix(x), as_matrix(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same tasks; got {x.shape[1]} and {y.shape[1]}")
    rng = np.random.default_rng(seed)
    samples = _poi(resample(x, reps, rng), resample(y, reps, rng))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Estimate(probability_of_improvement(x, y), float(low), float(high))


def performance_profile(
    scores: np.ndarray, taus: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fraction of runs scoring above each threshold in ``taus`` (the run-score distribution),
    and the lower and upper edges of its bootstrap band."""
    scores = as_matrix(scores)
    taus = np.asarray(taus, dtype=float)

    def fraction_above(s: np.ndarray) -> np.ndarray:
        return (_flat(s)[..., None, :] > taus[:, None]).mean(axis=-1)

    samples = fraction_above(resample(scores, reps, np.random.default_rng(seed)))
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(samples, [tail, 100 - tail], axis=0)
    return fraction_above(scores), low, high


def curve_iqm(
    curves: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IQM across runs at each point of ``curves`` (shape ``(runs, points)``), with bootstrap bands."""
    curves = np.asarray(curves, dtype=float)
    rows = np.random.default_rng(seed).integers(0, curves.shape[0], size=(reps, curves.shape[0]))
    samples = stats.trim_mean(curves[rows], proportiontocut=0.25, axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(samples, [tail, 100 - tail], axis=0)
    return stats.trim_mean(curves, proportiontocut=0.25, axis=0), low, high
