"""``lab sweep``, ``lab report`` and ``lab tune``: :func:`add_commands` adds them to the ``lab``
command's subparsers; each handler imports its module when it runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lab.cli_types import random_seed
from lab.core.errors import LabError


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "sweep",
        help="train a spec over many seeds and hyperparameter values: one run per trial, resumable",
        description="Every trial is an ordinary run directory under sweeps/<name>/trials/, indexed in "
        "sweeps/<name>/sweep.json. Rerunning the same command finishes only the missing trials.",
    )
    p.add_argument(
        "spec", metavar="SPEC.yaml", help="a run spec (a 'sweep:' section may give seeds and grid)"
    )
    p.add_argument("--seeds", default=None, help="seeds: 0-19, 0,3,7 or 0-4,10 (default: the spec's)")
    p.add_argument(
        "--grid",
        action="append",
        metavar="KEY=V1,V2",
        help="values of a spec key, as lab train --set names it (hyperparameters.learning_rate=0.1,0.5); "
        "repeat for a product of several keys",
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a spec key for every trial")
    p.add_argument(
        "--backend", default=None, help="pool (default: a local process pool), serial, or ray (Ray Tune)"
    )
    p.add_argument("--workers", type=int, default=None, help="pool processes (default: the CPU count)")
    p.add_argument("--address", default=None, help="with --backend ray: 'auto' or HOST:PORT of a Ray cluster")
    p.add_argument("--sweeps-dir", default="sweeps", help="where sweep directories go (default: sweeps)")
    p.set_defaults(handler=cmd_sweep)

    p = sub.add_parser(
        "report",
        help="aggregate statistics of a sweep: IQM, bootstrap CIs, probability of improvement, plots",
        description="Mean, median and interquartile mean of each configuration's final evaluation with "
        "95% stratified bootstrap confidence intervals, the probability of improvement between "
        "configurations, performance profiles and learning curves (Agarwal et al. 2021).",
    )
    p.add_argument("sweep_dir", metavar="SWEEP_DIR", help="a directory made by lab sweep")
    p.add_argument(
        "--metric", default="mean_return", help="mean_return (default), success_rate or policy_value"
    )
    p.add_argument("--reps", type=int, default=2000, help="bootstrap resamples (default: 2000)")
    p.add_argument(
        "--seed", type=random_seed, default=0, help="the bootstrap's seed (the report is reproducible)"
    )
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser(
        "tune",
        help="search hyperparameters with Optuna (TPE, median pruning), resumable, parallel workers",
        description="Each trial is a run directory under tunes/<name>/trials/; the study is the journal "
        "tunes/<name>/journal.log. Rerun the command to continue to --trials; run it in several shells "
        "(or give --workers) to search in parallel.",
    )
    p.add_argument("spec", metavar="SPEC.yaml", help="a run spec: the values every trial starts from")
    p.add_argument(
        "--trials", type=int, required=True, help="completed or pruned trials the study should hold"
    )
    p.add_argument(
        "--param",
        action="append",
        metavar="KEY=KIND:...",
        help="a searched key: hyperparameters.learning_rate=float:0.01:1:log, total_timesteps=int:1000:5000, "
        "hyperparameters.initial_q=choice:0,1 (repeatable)",
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a spec key for every trial")
    p.add_argument("--metric", default="mean_return", help="the figure maximized: the last evaluation's")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes (default: 1)")
    p.add_argument("--tunes-dir", default="tunes", help="where studies go (default: tunes)")
    p.set_defaults(handler=cmd_tune)


def sweep_section(data: dict[str, Any], source: str) -> dict[str, Any]:
    """The spec's ``sweep:`` section (seeds, grid, backend, workers), removed from ``data``."""
    section = data.pop("sweep", None) or {}
    if not isinstance(section, dict):
        raise LabError(f"sweep: in {source} must be a mapping (seeds:, grid:, backend:, workers:)")
    unknown = set(section) - {"seeds", "grid", "backend", "workers"}
    if unknown:
        raise LabError(
            f"unknown key {sorted(unknown)[0]!r} under sweep: in {source}; "
            "valid: seeds, grid, backend, workers"
        )
    grid = section.get("grid") or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise LabError(
            f"sweep: grid: in {source} must map keys to lists of values (learning_rate: [0.1, 0.5])"
        )
    return section


def cmd_sweep(args: argparse.Namespace) -> int:
    from lab.spec import apply_overrides, load_spec_file
    from lab.sweeps.grid import parse_grid, parse_seeds, spec_seeds
    from lab.sweeps.sweep import run_sweep

    data = load_spec_file(args.spec)
    if not isinstance(data, dict):
        raise LabError(f"{args.spec} must be a mapping of keys to values")
    section = sweep_section(data, args.spec)
    data = apply_overrides(data, args.set or [])
    if args.seeds is not None:
        seeds = parse_seeds(args.seeds)
    elif section.get("seeds") is not None:
        seeds = spec_seeds(section["seeds"], "sweep: seeds")
    else:
        seeds = spec_seeds(data.get("seeds") or [data.get("seed", 0)], "seeds")
    grid = {k: list(v) for k, v in (section.get("grid") or {}).items()}
    grid.update(parse_grid(args.grid or []))
    backend = args.backend or section.get("backend") or "pool"
    workers = args.workers if args.workers is not None else section.get("workers")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise LabError(f"--workers must be a whole number >= 1; got {workers!r}")

    def report(name: str, error: str | None, done: int, total: int) -> None:
        print(f"[{done}/{total}] {name}: {'finished' if error is None else 'FAILED: ' + error}", flush=True)

    result = run_sweep(data, seeds, grid, args.sweeps_dir, backend, workers, args.address, on_trial=report)
    print(f"{result.path}: {result.ran} trial(s) run, {result.skipped} already finished")
    if result.failed:
        raise LabError(
            f"{len(result.failed)} trial(s) failed (see {result.path / 'sweep.json'}); the first: "
            f"{next(iter(result.failed))}: {next(iter(result.failed.values()))}"
        )
    print(f"aggregate statistics: lab report {result.path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from lab.sweeps.report import make_report, print_report

    report = make_report(args.sweep_dir, metric=args.metric, reps=args.reps, seed=args.seed)
    print_report(report, Path(args.sweep_dir))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from lab.spec import apply_overrides, load_spec_file
    from lab.sweeps.tune import parse_param, run_tune

    data = load_spec_file(args.spec)
    if not isinstance(data, dict):
        raise LabError(f"{args.spec} must be a mapping of keys to values")
    data.pop("sweep", None)
    data = apply_overrides(data, args.set or [])
    if args.workers < 1:
        raise LabError(f"--workers must be at least 1; got {args.workers}")
    params = [parse_param(p) for p in args.param or []]
    study = run_tune(data, params, args.trials, args.tunes_dir, args.workers, args.metric)
    states: dict[str, int] = {}
    for trial in study.trials:
        states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
    print(
        f"{Path(args.tunes_dir) / study.study_name}: "
        + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    )
    try:
        best = study.best_trial
    except ValueError:
        raise LabError("no trial has completed yet; every one so far was pruned or failed") from None
    params_text = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items()
    )
    print(f"best: trial {best.number}, {args.metric} {best.value:.4g} with {params_text}")
    print(f"its run: {best.user_attrs.get('run')}")
    return 0
