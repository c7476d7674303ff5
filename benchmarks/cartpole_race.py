"""What the CartPole benchmarks share: the evaluation, the clock that leaves it out, and the table.

Imported by ``bench_dqn.py`` and ``bench_ppo.py`` (run as scripts from the repository root, so this
folder is on ``sys.path``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

TARGET = 475.0


def evaluate(predict: Callable[[np.ndarray], int], seed: int) -> float:
    """Mean return of 10 greedy CartPole-v1 episodes (seeds fixed by the run's seed)."""
    env = gym.make("CartPole-v1")
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


def report(name: str, clocks: list[Clock]) -> tuple[float | None, float | None, int, float]:
    """Print each seed's figures; returns (median steps, median seconds, seeds that reached, median final)."""
    for seed, clock in enumerate(clocks):
        reached = (
            f"{clock.reached[0]:>7,} steps {clock.reached[1]:6.1f} s" if clock.reached else "not reached"
        )
        print(f"  {name:<18} seed {seed}: {TARGET:g} at {reached}; final {clock.last:.1f}", flush=True)
    got = [c.reached for c in clocks if c.reached]
    return (
        statistics.median([s for s, _ in got]) if got else None,
        statistics.median([t for _, t in got]) if got else None,
        len(got),
        statistics.median([c.last for c in clocks]),
    )


def print_table(
    title: str, table: dict[str, tuple[float | None, float | None, int, float]], seeds: int
) -> None:
    print(f"\n{title}, medians over seeds that reached {TARGET:g}:")
    for name, (steps, seconds, n, final) in table.items():
        shown = f"{steps:>8,.0f} steps {seconds:7.1f} s" if steps is not None else "     never reached    "
        print(f"  {name:<18} {shown}  ({n}/{seeds} seeds)  final eval {final:.1f}")
    ours, sb3 = table["ours"][1], table["stable-baselines3"][1]
    if ours is not None and sb3 is not None:
        ours_steps, sb3_steps = table["ours"][0], table["stable-baselines3"][0]
        print(f"  wall-clock ratio ours / sb3: {ours / sb3:.2f} (target <= 0.5); "
              f"env steps ratio {ours_steps / sb3_steps:.2f} (target <= 1)")  # fmt: skip
