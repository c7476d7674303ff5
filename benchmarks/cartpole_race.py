"""What the CartPole benchmarks share: the evaluation, the clock that leaves it out, and the table.

Imported by ``bench_dqn.py`` and ``bench_ppo.py`` (run as scripts from the repository root, so this
folder is on ``sys.path``). Their ``--study N`` option runs N seeds a side, each run stopping at its
first evaluation >= 475, and compares the distributions of env steps to 475 (see :func:`study`):
with three seeds a side, the race's median env steps differ between repeats by more than any gap
between the implementations, so the question "does ours need more steps?" needs many seeds.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed

import gymnasium as gym
import numpy as np

TARGET = 475.0

# stable-baselines3 makes a new empty folder under the system's temporary folder for every model's
# logger unless $SB3_LOGDIR names one: a benchmark's hundreds of runs share one, removed at exit.
if "SB3_LOGDIR" not in os.environ:
    _SB3_LOGS = tempfile.TemporaryDirectory(prefix="lab-bench-sb3-logs-")
    os.environ["SB3_LOGDIR"] = _SB3_LOGS.name


class Reached(Exception):
    """Raised by a run of ours that stops at its first evaluation >= TARGET."""


def sb3_hyperparameters(hp: dict) -> dict:
    """``hp`` for SB3: rl-zoo's 'lin_<x>' strings as the callables it takes, and no ``n_envs``
    (SB3 takes the env copies as a vector env, not as a hyperparameter)."""
    out = {k: v for k, v in hp.items() if k != "n_envs"}
    for key in ("learning_rate", "clip_range"):
        value = out.get(key)
        if isinstance(value, str) and value.startswith("lin_"):
            start = float(value[4:])
            out[key] = lambda progress_remaining, start=start: start * progress_remaining
    return out


def evaluate(predict: Callable[[np.ndarray], int], seed: int, env_id: str = "CartPole-v1") -> float:
    """Mean return of 10 greedy episodes (CartPole-v1 unless named; seeds fixed by the run's seed)."""
    env = gym.make(env_id)
    returns = []
    for k in range(10):
        obs, _ = env.reset(seed=10_000 + seed * 100 + k)
        done, total = False, 0.0
        while not done:
            obs, reward, terminated, truncated, _ = env.step(int(predict(obs)))
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


class EvaluateEvery(gym.Wrapper):
    """A training env that calls ``evaluate_at(step)`` after every ``every``-th step: how our
    agents are evaluated mid-training at the same steps as SB3's per-step callback."""

    def __init__(self, env: gym.Env, every: int, evaluate_at: Callable[[int], None]) -> None:
        super().__init__(env)
        self.every, self.evaluate_at, self.steps = every, evaluate_at, 0

    def step(self, action):
        result = self.env.step(action)
        self.steps += 1
        if self.steps % self.every == 0:
            self.evaluate_at(self.steps)
        return result


class Clock:
    """Training time to the first evaluation >= TARGET, evaluation time excluded."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.paused = 0.0
        self.reached: tuple[int, float] | None = None
        self.last = float("nan")

    def check(self, timestep: int, predict: Callable[[np.ndarray], int], seed: int) -> None:
        pause = time.perf_counter()
        self.last = evaluate(predict, seed)
        if self.reached is None and self.last >= TARGET:
            self.reached = (timestep, pause - self.start - self.paused)
        self.paused += time.perf_counter() - pause


Run = Callable[[int, bool], Clock]  # (seed, stop at the first evaluation >= TARGET) -> its clock


def race(
    runs: dict[str, Run], seeds: int, stop_at_target: bool = False, repeat: int = 1, first: int = 0
) -> dict[str, list[Clock]]:
    """Every side's run for each seed, side by side: seed 0 of each side in turn, then seed 1, and so
    on, so that a slow spell of a shared machine falls on the sides alike rather than on whichever
    side's block of runs it meets. With ``repeat`` > 1 each seed's round is made that many times and
    each run's median time kept (a seed makes the same run every time, so only the seconds vary).
    The seeds are ``first`` to ``first + seeds - 1``; a line a seed says how each side's run went."""
    made: dict[str, list[Clock]] = {name: [] for name in runs}
    for n, seed in enumerate(range(first, first + seeds), start=1):
        rounds = [[run(seed, stop_at_target) for run in runs.values()] for _ in range(repeat)]
        for k, name in enumerate(runs):
            made[name].append(_median_clock([clocks[k] for clocks in rounds]))
        shown = "; ".join(f"{name} {describe(made[name][-1])}" for name in runs)
        print(f"  seed {seed} ({n}/{seeds}): {shown}", flush=True)
    return made


def describe(clock: Clock, seconds: bool = True) -> str:
    """A run's figures in a few words: where it reached TARGET (in env steps, and ``seconds``), and its
    last evaluation."""
    if clock.reached is None:
        return f"{TARGET:g} not reached, final {clock.last:.1f}"
    steps, taken = clock.reached
    return (
        f"{TARGET:g} at {steps:,} steps"
        + (f", {taken:.2f} s" if seconds else "")
        + f", final {clock.last:.1f}"
    )


def pairs(ours: Run, sb3: Run, seed: int, times: int) -> None:
    """``times`` runs of one seed a side, in turn, each stopping at TARGET (the seed makes the same
    run every time): each side's seconds, and the ratio of their medians: many samples of the
    machine's noise for one pair of runs (the sides may take different steps to get there)."""
    seconds: dict[str, list[float]] = {"ours": [], "stable-baselines3": []}
    for _ in range(times):
        for name, run in (("ours", ours), ("stable-baselines3", sb3)):
            clock = run(seed, True)
            if clock.reached is None:
                raise SystemExit(
                    f"{name} did not reach {TARGET:g} with seed {seed}: choose another --pair-seed"
                )
            seconds[name].append(clock.reached[1])
    print(f"\nSeed {seed}, {times} runs a side in turn, seconds to {TARGET:g}:")
    for name, values in seconds.items():
        print(
            f"  {name:<19} {' '.join(f'{v:.2f}' for v in values)}  (median {statistics.median(values):.2f})"
        )
    ratios = [a / b for a, b in zip(seconds["ours"], seconds["stable-baselines3"], strict=True)]
    median_ratio = statistics.median(seconds["ours"]) / statistics.median(seconds["stable-baselines3"])
    print(f"  ratio of the medians {median_ratio:.2f}; pair by pair {min(ratios):.2f} to {max(ratios):.2f}")


def _median_clock(clocks: list[Clock]) -> Clock:
    """The run with the median seconds to TARGET (the lower middle one of an even count)."""
    ordered = sorted(clocks, key=lambda c: c.reached[1] if c.reached else float("inf"))
    return ordered[(len(clocks) - 1) // 2]


Figures = tuple[float | None, float | None, int, float, float | None]


def figures(clocks: list[Clock]) -> Figures:
    """(median steps, median seconds, seeds that reached, median final, microseconds per env step:
    the seconds to TARGET of every run over their env steps) of one side's runs. The medians count a
    run that never reached TARGET as the slowest (infinite): dropping it would favour the side that
    fails more; ``None`` when half the runs or more never reached it."""
    got = [c.reached for c in clocks if c.reached]
    missing = [math.inf] * (len(clocks) - len(got))

    def median(values: list[float]) -> float | None:
        middle = statistics.median(values + missing)
        return middle if math.isfinite(middle) else None

    return (
        median([s for s, _ in got]),
        median([t for _, t in got]),
        len(got),
        statistics.median([c.last for c in clocks]),
        sum(t for _, t in got) / sum(s for s, _ in got) * 1e6 if got else None,
    )


def print_table(title: str, clocks: dict[str, list[Clock]]) -> None:
    """Each side's medians over the seeds (:func:`figures`) and our ratios to stable-baselines3's,
    the wall-clock ratio with a bootstrap interval (:func:`ratio_interval`)."""
    table = {name: figures(side) for name, side in clocks.items()}
    seeds = len(clocks["stable-baselines3"])
    print(f"\n{title}, medians over the seeds (a run that never reached {TARGET:g} counts as the slowest):")
    for name, (steps, seconds, n, final, per_step) in table.items():
        shown = f"{steps:>8,.0f} steps {seconds:7.1f} s" if steps is not None else "     never reached    "
        cost = f"{per_step:.0f} us per env step" if per_step is not None else ""
        print(f"  {name:<19} {shown}  ({n}/{seeds} seeds)  final eval {final:.1f}  {cost}")
    sb3_steps, sb3_seconds, _, _, sb3_per_step = table["stable-baselines3"]
    for name, (steps, seconds, _, _, per_step) in table.items():
        if name == "stable-baselines3" or seconds is None or sb3_seconds is None:
            continue
        interval = ratio_interval(clocks[name], clocks["stable-baselines3"])
        shown = f" (95% bootstrap CI {interval[0]:.2f} to {interval[1]:.2f})" if interval else ""
        print(f"  {name}: wall-clock ratio to sb3 {seconds / sb3_seconds:.2f}{shown} (target <= 0.6); "
              f"env steps ratio {steps / sb3_steps:.2f} (--study: many seeds); "
              f"per env step {per_step / sb3_per_step:.2f}")  # fmt: skip


def ratio_interval(ours: list[Clock], sb3: list[Clock]) -> tuple[float, float] | None:
    """A 95% bootstrap interval of the ratio of the sides' median seconds to TARGET (the seeds of each
    side resampled apart), from 10 runs a side or more, every one of which reached it; ``None``
    otherwise (a resample of runs that never reached it has no finite median). The ratio of the
    medians moves with the seeds drawn: on this machine PPO's spanned 0.59-0.89 over 60 seeds a side
    and 0.57-0.67 over 400 (docs/benchmarks.md)."""
    from scipy.stats import bootstrap

    a, b = ([c.reached[1] for c in side if c.reached] for side in (ours, sb3))
    if min(len(a), len(b)) < 10 or (len(a), len(b)) != (len(ours), len(sb3)):
        return None
    result = bootstrap(
        (a, b), lambda x, y, axis=-1: np.median(x, axis=axis) / np.median(y, axis=axis),
        method="percentile", random_state=0,
    )  # fmt: skip
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def positive(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def add_race_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stop",
        action="store_true",
        help="stop each run at its first evaluation >= 475 (the same figures, sooner: for many seeds)",
    )
    parser.add_argument(
        "--repeat",
        type=positive,
        default=1,
        metavar="K",
        help="make each seed's runs K times (in turn) and keep each run's median seconds",
    )
    parser.add_argument(
        "--pairs",
        type=positive,
        metavar="N",
        help="N runs of one seed a side, in turn",
    )
    parser.add_argument("--pair-seed", type=int, help="--pairs: the seed (default: the race's median seed)")
    parser.add_argument("--study", type=int, metavar="N", help="env steps to 475 over N seeds a side")
    parser.add_argument("--first-seed", type=int, default=0, help="the race's or --study's first seed")
    parser.add_argument("--jobs", type=int, help="--study: processes (default: 2, or 1 on one core)")


def study(
    runs: dict[str, Run], seeds: int, first: int = 0, jobs: int | None = None, every: int | None = None
) -> None:
    """Env steps to TARGET over many seeds a side (each run stops there), in ``jobs`` processes;
    prints :func:`compare`'s summary. Seconds are not compared here: the runs share the cores."""
    jobs = jobs or min(2, os.cpu_count() or 1)
    order = list(range(first, first + seeds))
    steps: dict[str, dict[int, int | None]] = {name: {} for name in runs}
    with ProcessPoolExecutor(jobs) as pool:
        futures = {pool.submit(run, seed, True): (name, seed) for name, run in runs.items() for seed in order}
        for n, future in enumerate(as_completed(futures), start=1):  # a line as each run ends
            (name, seed), clock = futures[future], future.result()
            steps[name][seed] = clock.reached[0] if clock.reached else None
            print(
                f"  {name} seed {seed} ({n}/{len(futures)} runs): {describe(clock, seconds=False)}",
                flush=True,
            )
    print(f"\nEnv steps to {TARGET:g}, seeds {order[0]}-{order[-1]} ({seeds} a side):")
    compare({name: [by_seed[seed] for seed in order] for name, by_seed in steps.items()}, every)


def compare(steps: dict[str, list[int | None]], every: int | None = None) -> None:
    """Each side's quartiles and mean of the steps to TARGET (None: never reached), the Mann-Whitney U
    test of "the two distributions are the same" (two-sided), and, by drawing 3 seeds a side 20,000
    times from the runs, how often the three-seed race would find ours' median <= stable-baselines3's.

    ``every``: the nominal evaluation interval when evaluations fall at rollout ends. A run that first
    reaches the target at the evaluation after the k-th multiple of ``every`` is then also counted as
    k intervals, so that two runs reaching it at the same evaluation tie: SB3's rollouts of exactly
    256 steps cross 12,000 at 12,032, ours (whose rollouts leave out the reset steps after an
    episode's end) anywhere from 12,000 to 12,256.
    """
    from scipy.stats import mannwhitneyu

    from lab.sweeps.statistics import bootstrap_ci, iqm, probability_of_improvement_ci

    # A run that never reached TARGET counts as the slowest (infinite steps), in the ranks of the tests
    # and in the medians: left out, it would favour the side that fails more.
    got: dict[str, np.ndarray] = {}
    for name, runs in steps.items():
        got[name] = np.array([math.inf if s is None else s for s in runs], dtype=float)
        print(f"  {name:<19} per seed: {' '.join(f'{s:,}' if s is not None else '-' for s in runs)}")
        values = got[name][np.isfinite(got[name])]
        if len(values):
            q1, q2, q3 = np.percentile(got[name], [25, 50, 75], method="inverted_cdf")  # runs, not between
            error = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
            print(f"  {name:<19} reached {len(values)}/{len(runs)}; quartiles {q1:,.0f} / {q2:,.0f} / "
                  f"{q3:,.0f}; mean of the runs that reached it {values.mean():,.0f} (standard error "
                  f"{error:,.0f})")  # fmt: skip
    ours, sb3 = got["ours"], got["stable-baselines3"]
    if np.isfinite(ours).sum() < 3 or np.isfinite(sb3).sum() < 3:
        return
    p = mannwhitneyu(ours, sb3, alternative="two-sided").pvalue
    print(f"  median ratio ours / sb3 {np.median(ours) / np.median(sb3):.2f}; "
          f"Mann-Whitney U two-sided p = {p:.2f}")  # fmt: skip
    if not (np.isfinite(ours).all() and np.isfinite(sb3).all()):
        print("  (IQM and P(fewer steps) need every run to reach the target: left out)")
        return
    print(f"  mean ratio ours / sb3 {ours.mean() / sb3.mean():.2f}")
    # The statistics `lab report` gives a sweep (Agarwal et al. 2021), on the same runs
    for name, values in got.items():
        estimate = bootstrap_ci(values, iqm)
        print(f"  {name:<19} IQM {estimate.value:,.0f} (95% bootstrap CI {estimate.low:,.0f} to "
              f"{estimate.high:,.0f})")  # fmt: skip
    fewer = probability_of_improvement_ci(-ours, -sb3)  # fewer steps is better
    print(f"  P(a run of ours needs fewer steps than one of sb3's) {fewer.value:.2f} "
          f"(95% CI {fewer.low:.2f} to {fewer.high:.2f}; 0.5: no difference)")  # fmt: skip
    print(f"  a three-seed race drawn from these runs finds ours' median steps <= sb3's "
          f"{three_seed_wins(ours, sb3):.0%} of the time")  # fmt: skip
    if every:
        ours_k, sb3_k = ours // every, sb3 // every
        p = mannwhitneyu(ours_k, sb3_k, alternative="two-sided").pvalue
        print(f"  counted in evaluations (steps // {every:,}): means {ours_k.mean():.2f} and "
              f"{sb3_k.mean():.2f}, Mann-Whitney U p = {p:.2f}; ours' three-seed median <= sb3's "
              f"{three_seed_wins(ours_k, sb3_k):.0%} of the time")  # fmt: skip


def three_seed_wins(ours: np.ndarray, sb3: np.ndarray, draws: int = 20_000) -> float:
    """How often the median of 3 seeds drawn from ``ours`` is <= that of 3 drawn from ``sb3``."""
    rng = np.random.default_rng(0)
    ours3 = np.median(rng.choice(ours, (draws, 3)), axis=1)
    sb33 = np.median(rng.choice(sb3, (draws, 3)), axis=1)
    return float(np.mean(ours3 <= sb33))
