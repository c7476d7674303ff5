"""The pictures of a run: the learning curve and the training diagnostics.

``learning_curve.png`` shows the moving average of the episode returns with a one-standard-deviation
band, the greedy evaluations with theirs, and the optimum when known. Raw returns are not drawn: with
0/1 rewards (IceLake) they fill the plot as a solid block. The bands are clipped to the range the
returns can take, unless the caller gives it, as the run's data shows it: the training band to the
smallest and largest training return, the evaluations' to those of them that many episodes reached (a
floor or ceiling of the task: 0 and 1 on IceLake, 500 on CartPole). A band above 1 on IceLake or above
500 on CartPole would show returns that cannot happen. The legend sits above the axes, off the curves'
last points.

``training.png`` draws each column of ``train.csv`` (the agent's diagnostics, see
:mod:`agents.common.diagnostics`) in its own small panel. A generative run's ``learning_curve.png``
(:func:`plot_generative_curves`) draws its training losses and held-out figures against steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lab.core.files import atomic_path
from lab.run_logs import read_csv
from lab.runs import RunDir

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SMOOTHING = 100  # episodes in the moving average, at most (a tenth of the episodes on short runs)


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each point (fewer at the start)."""
    cumulative = np.cumsum(np.insert(np.asarray(values, dtype=np.float64), 0, 0.0))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    return (cumulative[1:] - cumulative[np.arange(1, len(values) + 1) - counts]) / counts


def rolling_std(values: np.ndarray, window: int) -> np.ndarray:
    """Standard deviation of the last ``window`` values at each point (fewer at the start)."""
    values = np.asarray(values, dtype=np.float64)
    # E[(x - c)^2] - E[x - c]^2 about the overall mean c, which keeps the subtraction well conditioned
    centred = values - values.mean() if len(values) else values
    variance = rolling_mean(centred**2, window) - rolling_mean(centred, window) ** 2
    return np.sqrt(np.maximum(variance, 0.0))


def _attained(returns: np.ndarray, value: float) -> bool:
    """Whether many training episodes (5%, at least 2) ended with exactly this return: a floor or ceiling
    of the task (0 and 1 on IceLake, 500 on CartPole), so evaluations cannot pass it either. A return
    reached once is only the best so far, and a greedy evaluation may beat it."""
    return bool(np.isfinite(value)) and int(np.sum(returns == value)) >= max(2, 0.05 * len(returns))


def learning_curve_figure(
    run: RunDir, title: str, optimum: float | None = None, return_range: tuple[float, float] | None = None
) -> Figure:
    """The learning curve as a matplotlib figure (see the module docstring); ``return_range`` bounds
    the bands when the caller knows it, else the data's range does."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    episodes = read_csv(run.metrics)
    evals = read_csv(run.evals)
    returns = np.asarray(episodes.get("return", []), dtype=np.float64)
    means = np.asarray(evals.get("mean_return", []), dtype=np.float64)
    std = np.nan_to_num(np.asarray(evals.get("std_return", []), dtype=np.float64))
    given = return_range is not None
    if return_range is None:
        seen = returns[np.isfinite(returns)]
        return_range = (float(seen.min()), float(seen.max())) if len(seen) else (-np.inf, np.inf)
    low, high = return_range
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110, layout="constrained")
    if len(returns):
        steps = np.asarray(episodes["timestep"])
        window = int(min(SMOOTHING, max(1, len(returns) // 10)))
        smooth = rolling_mean(returns, window)
        spread = rolling_std(returns, window)
        ax.fill_between(
            steps, np.clip(smooth - spread, low, high), np.clip(smooth + spread, low, high),
            color="#9bb7d4", alpha=0.45, linewidth=0, label="± 1 std over those episodes",
        )  # fmt: skip
        ax.plot(steps, smooth, color="#1f5fa6", linewidth=1.8, label=f"episode return, mean of last {window}")
    if len(means):
        floor = low if given or _attained(returns, low) else -np.inf
        ceiling = high if given or _attained(returns, high) else np.inf
        below, above = means - np.maximum(means - std, floor), np.minimum(means + std, ceiling) - means
        ax.errorbar(
            evals["timestep"], means, yerr=np.maximum([below, above], 0.0), fmt="o", color="#d9822b",
            markersize=4, capsize=2, label="evaluation (greedy), ± 1 std",
        )  # fmt: skip
    if optimum is not None:
        ax.axhline(optimum, color="#2e8b57", linestyle="--", linewidth=1.2, label="optimal return (exact)")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("return")
    ax.grid(alpha=0.3)
    if ax.has_data():
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, fontsize=8, frameon=False)
    fig.suptitle(title)
    return fig


def save_png(fig: Figure, path: Path) -> Path:
    """Write a matplotlib figure to ``path`` as PNG (atomically: a reader never sees half a file)
    and close it; every plot of the lab's commands goes through here."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def plot_learning_curve(run: RunDir, title: str, optimum: float | None = None) -> Path:
    """Draw the run's curve to ``learning_curve.png`` (and its diagnostics, when it has any, to
    ``training.png``); ``optimum`` (the optimal expected return) as a line."""

    fig = learning_curve_figure(run, title, optimum)
    save_png(fig, run.curve)
    plot_training_figures(run, title)
    return run.curve


def training_figure(run: RunDir, title: str) -> Figure | None:
    """One small panel per column of ``train.csv`` against env steps; None without diagnostics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = read_csv(run.training_log)
    keys = [k for k in columns if k not in ("timestep", "train/n_updates")]
    if not keys:
        return None
    n_cols = 4 if len(keys) > 6 else 3
    n_rows = -(-len(keys) // n_cols)
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(3.2 * n_cols, 2.3 * n_rows), dpi=100, squeeze=False, layout="constrained"
    )
    steps = np.asarray(columns["timestep"])
    for ax, key in zip(axes.flat, keys, strict=False):
        ax.plot(steps, columns[key], color="#1f5fa6", linewidth=1.0)
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.locator_params(axis="x", nbins=4)  # step counts are wide: few ticks, or they run together
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(keys) :]:
        ax.set_visible(False)
    fig.suptitle(f"{title}: training diagnostics (x: environment steps)", fontsize=10)
    return fig


def plot_training_figures(run: RunDir, title: str) -> Path | None:
    """Draw :func:`training_figure` to ``training.png`` in the run directory; None without diagnostics."""

    fig = training_figure(run, title)
    if fig is None:
        return None
    path = run.path / "training.png"
    save_png(fig, path)
    return path


def plot_generative_curves(run: RunDir, title: str) -> Path:
    """A generative run's ``learning_curve.png`` (:func:`generative_curves_figure`)."""
    return save_png(generative_curves_figure(run, title), run.curve)


def generative_curves_figure(run: RunDir, title: str) -> Figure:
    """Each training loss of ``metrics.csv`` against steps (as points while there are one or two
    rows, which a line would not show), and the held-out figures of ``eval.csv`` beside them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = read_csv(run.metrics)
    evals = read_csv(run.evals)
    keys = [k for k in metrics if k not in ("step", "lr")]
    held = [k for k in ("test_loss", "bits_per_dim") if evals.get(k)]
    fig, axes = plt.subplots(1, 2 if held else 1, figsize=(11 if held else 7, 4), dpi=110, squeeze=False)
    ax = axes[0, 0]
    marker = "o" if len(metrics.get("step", [])) < 3 else None
    for key in keys:
        ax.plot(metrics["step"], metrics[key], linewidth=1.2, marker=marker, markersize=4, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (mean per row)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if keys:
        ax.legend(fontsize=8)
    if held:
        ax = axes[0, 1]
        for key in held:
            ax.plot(evals["step"], evals[key], "o-", markersize=4, label=key)
        ax.set_xlabel("step")
        ax.set_title("held-out")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
