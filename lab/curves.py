"""The learning-curve picture of a run: episode returns, evaluations, and the optimum when known."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lab.core.files import atomic_path
from lab.runs import RunDir, read_csv


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each point (fewer at the start)."""
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (cumulative[1:] - cumulative[np.arange(1, len(values) + 1) - counts]) / counts


def plot_learning_curve(run: RunDir, title: str, optimum: float | None = None) -> Path:
    """Draw the run's curve to ``learning_curve.png``; ``optimum`` (the optimal expected return) as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    episodes = read_csv(run.metrics)
    evals = read_csv(run.evals)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    if episodes.get("timestep"):
        steps = np.asarray(episodes["timestep"])
        returns = np.asarray(episodes["return"])
        ax.plot(steps, returns, color="#9bb7d4", linewidth=0.6, alpha=0.6, label="episode return")
        ax.plot(steps, rolling_mean(returns, 100), color="#1f5fa6", linewidth=1.8, label="mean of last 100")
    if evals.get("timestep"):
        ax.errorbar(
            evals["timestep"], evals["mean_return"], yerr=evals["std_return"], fmt="o", color="#d9822b",
            markersize=4, capsize=2, label="evaluation (greedy)",
        )  # fmt: skip
    if optimum is not None:
        ax.axhline(optimum, color="#2e8b57", linestyle="--", linewidth=1.2, label="optimal return (exact)")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_path(run.curve) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return run.curve
