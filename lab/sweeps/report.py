"""``lab report SWEEP_DIR``: per configuration the mean, median and IQM of the final evaluation with
95% stratified bootstrap intervals, the probability of improvement between configurations, and two
pictures: performance profiles and learning curves (IQM across seeds with bootstrap bands)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lab.core.errors import LabError
from lab.core.files import write_text_atomic
from lab.run_logs import read_csv
from lab.runs import RunDir
from lab.sweeps import statistics
from lab.sweeps.sweep import read_index

METRICS = ("mean_return", "success_rate", "policy_value")  # higher is better, as the statistics assume
MAX_PAIRS = 15  # more configurations than this compare each with the best instead of every pair


@dataclass
class Config:
    """One configuration's finished trials: final scores and evaluation curves."""

    label: str
    scores: list[float] = field(default_factory=list)
    curves: list[list[float]] = field(default_factory=list)
    timesteps: list[list[float]] = field(default_factory=list)


def collect(path: Path, metric: str) -> list[Config]:
    """The finished trials of a sweep grouped by configuration, in the index's order."""
    if metric not in METRICS:
        raise LabError(f"--metric must be one of: {', '.join(METRICS)} (higher is better); got {metric!r}")
    configs: dict[str, Config] = {}
    without = 0  # finished trials without a finite final figure: an env that does not report it, or
    for entry in read_index(path)["trials"]:  # a run whose returns overflowed; they are left out
        run = RunDir(path / "trials" / entry["name"])
        columns = read_csv(run.evals)
        if entry.get("status") != "finished" or not columns.get(metric):
            continue
        values = columns[metric]
        if not math.isfinite(values[-1]):
            without += 1
            continue
        config = configs.setdefault(entry["config"], Config(entry["config"]))
        config.scores.append(values[-1])
        config.curves.append(values)
        config.timesteps.append(columns["timestep"])
    if not configs and without:
        raise LabError(
            f"no finished trial of {path} has a final {metric} figure (this env may not report it); "
            "try another --metric"
        )
    if not configs:
        raise LabError(f"{path} has no finished trials yet; run 'lab sweep' to finish them")
    return list(configs.values())


def summarize(configs: list[Config], reps: int, seed: int) -> dict[str, Any]:
    """The figures of the report, as JSON-ready data."""
    rows = {}
    for config in configs:
        scores = np.asarray(config.scores)
        rows[config.label] = {
            "runs": len(scores),
            **{
                name: statistics.bootstrap_ci(scores, stat, reps=reps, seed=seed).as_dict()
                for name, stat in statistics.AGGREGATES.items()
            },
        }
    pairs = []
    if len(configs) > 1:
        ranked = sorted(configs, key=lambda c: -rows[c.label]["iqm"]["value"])
        n = len(configs)
        if n * (n - 1) // 2 <= MAX_PAIRS:
            candidates = [(a, b) for i, a in enumerate(ranked) for b in ranked[i + 1 :]]
        else:
            candidates = [(ranked[0], b) for b in ranked[1:]]
        for a, b in candidates:
            estimate = statistics.probability_of_improvement_ci(
                np.asarray(a.scores), np.asarray(b.scores), reps=reps, seed=seed
            )
            pairs.append({"x": a.label, "y": b.label, "probability": estimate.as_dict()})
    return {"configurations": rows, "probability_of_improvement": pairs}


def plot_profiles(configs: list[Config], metric: str, path: Path, reps: int, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lab.curves import save_png

    everything = np.concatenate([c.scores for c in configs])
    low, high = float(everything.min()), float(everything.max())
    pad = 0.05 * (high - low) or 0.5
    taus = np.linspace(low - pad, high + pad, 201)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for config in configs:
        fraction, lower, upper = statistics.performance_profile(
            np.asarray(config.scores), taus, reps=reps, seed=seed
        )
        (line,) = ax.plot(
            taus,
            fraction,
            drawstyle="steps-post",
            linewidth=1.8,
            label=f"{config.label} ({len(config.scores)} runs)",
        )
        ax.fill_between(taus, lower, upper, step="post", color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel(f"final {metric} (τ)")
    ax.set_ylabel(f"fraction of runs with {metric} > τ")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Performance profiles (95% stratified bootstrap bands)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)


def plot_curves(configs: list[Config], metric: str, path: Path, reps: int, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lab.curves import save_png

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for config in configs:
        points = min(len(c) for c in config.curves)  # evaluation rounds every run of it has
        curves = np.asarray([c[:points] for c in config.curves])
        steps = np.median(np.asarray([t[:points] for t in config.timesteps]), axis=0)
        center, lower, upper = statistics.curve_iqm(curves, reps=reps, seed=seed)
        (line,) = ax.plot(steps, center, marker="o", markersize=3, linewidth=1.8, label=config.label)
        ax.fill_between(steps, lower, upper, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("environment steps (median over runs of each evaluation)")
    ax.set_ylabel(f"IQM of evaluation {metric}")
    ax.set_title("Learning curves: IQM across seeds, 95% bootstrap bands")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)


def make_report(
    path: str | Path, metric: str = "mean_return", reps: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Compute the report of the sweep at ``path``; writes report.json and the two PNGs beside its index."""
    path = Path(path)
    if reps < 100:
        raise LabError(f"--reps must be at least 100 for a 95% interval; got {reps}")
    configs = collect(path, metric)
    left_out = len(read_index(path)["trials"]) - sum(len(c.scores) for c in configs)
    report = {
        "metric": metric,
        "bootstrap_reps": reps,
        "bootstrap_seed": seed,
        "trials_left_out": left_out,
        **summarize(configs, reps, seed),
    }
    plot_profiles(configs, metric, path / "performance_profile.png", reps, seed)
    plot_curves(configs, metric, path / "learning_curves.png", reps, seed)
    report["pictures"] = ["performance_profile.png", "learning_curves.png"]
    write_text_atomic(path / "report.json", json.dumps(report, indent=2) + "\n")
    return report


def print_report(report: dict[str, Any], path: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    def fmt(e: dict[str, float]) -> str:
        return f"{e['value']:.4g} [{e['low']:.4g}, {e['high']:.4g}]"

    table = Table(title=f"Final {report['metric']} per configuration (95% stratified bootstrap CIs)")
    for column in ("configuration", "runs", "mean", "median", "IQM"):
        table.add_column(column, justify="left" if column == "configuration" else "right", overflow="fold")
    for label, row in report["configurations"].items():
        table.add_row(label, str(row["runs"]), fmt(row["mean"]), fmt(row["median"]), fmt(row["iqm"]))
    console = Console()
    console.print(table)
    if report["trials_left_out"]:
        print(
            f"{report['trials_left_out']} trial(s) left out: unfinished or failed ('lab sweep' finishes "
            f"them), or without a final {report['metric']} figure"
        )
    if report["probability_of_improvement"]:
        pairs = Table(title="Probability of improvement P(X > Y) of a run of X over a run of Y")
        for column in ("X", "Y", "P(X > Y) [95% CI]"):
            pairs.add_column(column)
        for pair in report["probability_of_improvement"]:
            pairs.add_row(pair["x"], pair["y"], fmt(pair["probability"]))
        console.print(pairs)
    print(
        f"wrote {path / 'report.json'}, {path / 'performance_profile.png'} and {path / 'learning_curves.png'}"
    )
