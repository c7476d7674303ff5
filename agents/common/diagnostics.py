"""Training diagnostics: the figures a practitioner reads in TensorBoard, under stable-baselines3's names.

Every update adds its figures (``train/value_loss``, ``train/approx_kl``, ...) to the agent's
:class:`TrainingFigures`; whoever logs calls ``agent.training_figures()`` now and then and gets the
mean of each figure over the updates since its last call (the latest value of a setting such as the
learning rate), with ``train/n_updates`` the count so far.
Agents compute the figures from tensors the update already has (no extra forward pass) and turn
them into Python numbers once per update.
"""

from __future__ import annotations

import math

import numpy as np


def explained_variance(predicted: np.ndarray, target: np.ndarray) -> float:
    """``1 - Var(target - predicted) / Var(target)``, stable-baselines3's figure: 1 is a perfect value
    function, 0 no better than a constant, negative worse; NaN when the targets do not vary (or are none)."""
    target = np.asarray(target, dtype=np.float64).ravel()
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    variance = np.var(target) if len(target) else 0.0
    return float("nan") if variance == 0 else float(1.0 - np.var(target - predicted) / variance)


class TrainingFigures:
    """Sums of each figure over the updates since the last :meth:`pop`, and the count of updates."""

    def __init__(self) -> None:
        self.n_updates = 0  # over the agent's life in this process
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._latest: dict[str, float] = {}

    def add(
        self, figures: dict[str, float], updates: int = 1, settings: dict[str, float] | None = None
    ) -> None:
        """One update's figures (or ``updates`` gradient steps summarised by their means), and the
        ``settings`` it ran with (learning rate, clip range, epsilon), reported as they are now."""
        self.n_updates += updates
        self._latest.update(settings or {})
        for key, value in figures.items():
            if math.isfinite(value):  # e.g. the explained variance of constant returns is left out
                self._sums[key] = self._sums.get(key, 0.0) + value
                self._counts[key] = self._counts.get(key, 0) + 1

    def pop(self) -> dict[str, float]:
        """The mean of each figure since the last call, the latest settings and ``train/n_updates``;
        empty when no update happened since."""
        if not self._counts and not self._latest:
            return {}
        means = {key: self._sums[key] / self._counts[key] for key in self._sums}
        figures = {**means, **self._latest, "train/n_updates": float(self.n_updates)}
        self._sums, self._counts, self._latest = {}, {}, {}
        return figures
