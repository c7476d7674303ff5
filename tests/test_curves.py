"""The learning-curve pictures: smoothed returns, bands inside the range returns can take, the legend
off the curves, and the diagnostics panel."""

from __future__ import annotations

import csv

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import LineCollection, PolyCollection

from lab.curves import (
    generative_curves_figure,
    learning_curve_figure,
    plot_learning_curve,
    rolling_mean,
    rolling_std,
)
from lab.run_logs import EPISODE_FIELDS, EVAL_FIELDS
from lab.runs import RunDir


def write_run(tmp_path, returns, evals, training=None) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    with run.metrics.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(EPISODE_FIELDS)
        writer.writerows((10 * (i + 1), i, r, 10) for i, r in enumerate(returns))
    with run.evals.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(EVAL_FIELDS)
        writer.writerows((t, m, s, "", "", "", "") for t, m, s in evals)
    if training is not None:
        with run.training_log.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["timestep", *training])
            writer.writerows(zip(*([100 * (i + 1) for i in range(3)], *training.values()), strict=True))
    return run


def drawn_limits(fig) -> tuple[float, float, float, float]:
    """The lowest and highest y of the training band and of the evaluation bars."""
    ax = fig.axes[0]
    band = np.concatenate([p.vertices[:, 1] for c in ax.collections if isinstance(c, PolyCollection)
                           for p in c.get_paths()])  # fmt: skip
    bars = np.concatenate([np.asarray(s)[:, 1] for c in ax.collections if isinstance(c, LineCollection)
                           for s in c.get_segments()])  # fmt: skip
    return band.min(), band.max(), bars.min(), bars.max()


def test_bands_of_zero_one_returns_stay_in_zero_one(tmp_path):
    rng = np.random.default_rng(0)
    returns = (rng.random(2000) < np.linspace(0.1, 0.9, 2000)).astype(float)  # IceLake-like successes
    run = write_run(tmp_path, returns, [(5000, 0.8, 0.4), (10000, 0.95, 0.2179), (20000, 0.1, 0.3)])
    fig = learning_curve_figure(run, "icelake")
    band_low, band_high, bar_low, bar_high = drawn_limits(fig)
    assert band_low == 0.0 and band_high == 1.0  # the unclipped band runs to about -0.4 and 1.4
    assert bar_low == 0.0 and bar_high == 1.0
    # the smoothed curve, not the raw 0/1 returns, is drawn
    [line] = [line for line in fig.axes[0].get_lines() if len(line.get_xdata()) == 2000]
    np.testing.assert_allclose(line.get_ydata(), rolling_mean(returns, 100))
    plt.close(fig)


def test_cartpole_bands_stop_at_the_500_many_episodes_reached(tmp_path):
    rng = np.random.default_rng(1)
    returns = np.minimum(500, rng.integers(300, 700, 400)).astype(float)  # half of them capped at 500
    run = write_run(tmp_path, returns, [(2000, 480.0, 40.0), (4000, 500.0, 0.0)])
    fig = learning_curve_figure(run, "cartpole")
    band_low, band_high, bar_low, bar_high = drawn_limits(fig)
    assert band_high == 500.0 and bar_high == 500.0 and band_low >= 300 and bar_low == pytest.approx(440.0)
    plt.close(fig)


def test_an_evaluation_beyond_the_best_training_episode_keeps_its_bar(tmp_path):
    """A best return reached once is no ceiling: the greedy evaluation's bar may pass it."""
    returns = np.arange(1.0, 201.0)  # each return once
    run = write_run(tmp_path, returns, [(1000, 300.0, 50.0)])
    fig = learning_curve_figure(run, "rising")
    band_low, band_high, bar_low, bar_high = drawn_limits(fig)
    assert band_low >= 1.0 and band_high <= 200.0 and (bar_low, bar_high) == (250.0, 350.0)
    plt.close(fig)
    fig = learning_curve_figure(run, "rising", return_range=(0.0, 320.0))  # a range the caller knows
    assert drawn_limits(fig)[3] == 320.0
    plt.close(fig)


def test_the_legend_is_off_the_curves(tmp_path):
    run = write_run(tmp_path, np.ones(50), [(500, 1.0, 0.0)])
    fig = learning_curve_figure(run, "legend", optimum=1.0)
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent()
    assert not legend.overlaps(ax.get_window_extent())  # above the axes, so no point hides under it
    plt.close(fig)


def test_rolling_std_is_numpys_over_each_window():
    values = np.random.default_rng(2).normal(1e6, 1.0, 50)  # a large offset: no cancellation
    expected = [np.std(values[max(0, i - 9) : i + 1]) for i in range(50)]
    np.testing.assert_allclose(rolling_std(values, 10), expected, rtol=1e-6, atol=1e-9)


def test_the_diagnostics_get_a_panel_each(tmp_path):
    training = {"train/loss": [1.0, 0.5, 0.25], "train/n_updates": [1, 2, 3], "time/fps": [900, 950, 1000]}
    run = write_run(tmp_path, np.zeros(20), [], training)
    plot_learning_curve(run, "panels")
    assert run.curve.is_file() and (run.path / "training.png").is_file()
    from lab.curves import training_figure

    fig = training_figure(run, "panels")
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["train/loss", "time/fps"]
    plt.close(fig)
    run.training_log.unlink()
    assert training_figure(run, "none") is None


@pytest.mark.parametrize("rows", [1, 2, 5])
def test_a_generative_runs_losses_show_however_few_rows_it_has(tmp_path, rows):
    """A short run's metrics.csv has a row or two: drawn as points (a line through one point shows
    nothing); a longer one as lines. The held-out figures sit in a second panel."""
    run = RunDir(tmp_path / "gen")
    run.path.mkdir()
    with run.metrics.open("w", newline="") as f:
        csv.writer(f).writerows(
            [["step", "loss", "kl", "lr"], *([50 * (i + 1), 3.0 - i, 0.1, 1e-3] for i in range(rows))]
        )
    with run.evals.open("w", newline="") as f:
        csv.writer(f).writerows([["step", "test_loss"], [50, 2.5], [100, 2.0]])
    fig = generative_curves_figure(run, "vae on digits")
    losses, held = fig.axes
    assert [line.get_label() for line in losses.get_lines()] == ["loss", "kl"]  # lr is not a loss
    assert all(len(line.get_xdata()) == rows for line in losses.get_lines())
    assert {line.get_marker() for line in losses.get_lines()} == ({"o"} if rows < 3 else {"None"})
    assert [line.get_label() for line in held.get_lines()] == ["test_loss"]
    plt.close(fig)
