"""Tabular agents: learning speed in env steps per second, and env steps to come within 1% of optimal.

    python benchmarks/bench_tabular.py            # full run (a few minutes)
    python benchmarks/bench_tabular.py --quick    # small counts, for a smoke test

Single process, pinned to one core.

(a) Speed. Q-learning's ``learn()`` in env steps per second next to the raw env: the same env made
with ``gymnasium.make`` (same wrappers), precomputed random actions, and ``reset(seed=...)`` at
every episode end, as ``learn()`` does. Q-learning runs twice: with ``epsilon=1`` (random actions,
so the episodes look like the raw loop's: the difference is the agent's overhead per step) and with
the tuned hyperparameters below (short episodes once it has learned; a seeded reset costs about
15 microseconds, a dozen steps' worth). Best of ``--repeats``.

(b) Steps to 1%. Each agent trains on each world for a step budget with the hyperparameters
below, 5 seeds. At the first episode end past every ``every`` steps the greedy policy is evaluated
exactly (``agents.planning.policy_evaluation`` on ``env.unwrapped.transition_model()``) and compared
at the start state with ``value_iteration``'s optimum, gamma = 0.99:
``|V_pi(s0) - V*(s0)| <= 0.01 |V*(s0)|``. Reported: the median over seeds of the first step
within 1% ("first") and of the step from which it stays within 1% up to the budget ("settled"),
a seed that never gets there counting as beyond the budget; how many seeds got there; and the
median gap at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # the exact evaluations' linear algebra stays on our core

import gymnasium as gym
import numpy as np

import envs  # noqa: F401  (registers the lab/ ids)
from agents import AGENTS, episode_seed
from agents.planning import PlanningError, policy_evaluation, value_iteration

GAMMA = 0.99
TOLERANCE = 0.01
SPEED_ENVS = ("lab/CliffWalk-v0", "lab/IceLake8x8-v0")

FAST = {"epsilon": {"type": "exponential", "start": 0.1, "end": 0.0, "decay": 0.998}, "learning_rate": 0.5}
CLIFF_DOUBLE_Q = {"epsilon": 0.5, "learning_rate": 0.3}
CLIFF_MONTE_CARLO = {
    "epsilon": {"type": "exponential", "start": 0.5, "end": 0.0, "decay": 0.999998},
    "learning_rate": 0.05,
}
BIG_LAKE = {
    "initial_q": 1.0,
    "epsilon": 0.2,
    "learning_rate": {"type": "exponential", "start": 0.1, "end": 0.001, "decay": 0.999995},
}
BIG_LAKE_ON_POLICY = {
    "initial_q": 1.0,
    "epsilon": {"type": "exponential", "start": 0.5, "end": 0.0, "decay": 0.999995},
    "learning_rate": 0.02,
}
BIG_LAKE_MONTE_CARLO = {
    "initial_q": 1.0,
    "epsilon": {"type": "exponential", "start": 0.5, "end": 0.0, "decay": 0.999995},
    "learning_rate": {"type": "exponential", "start": 0.1, "end": 0.001, "decay": 0.999997},
}

# (env id, algorithm) -> (hyperparameters, step budget, evaluate every)
CONFIGS: dict[tuple[str, str], tuple[dict[str, Any], int, int]] = {
    ("lab/CliffWalk-v0", "q_learning"): (FAST, 50_000, 500),
    ("lab/CliffWalk-v0", "sarsa"): (FAST, 50_000, 500),
    ("lab/CliffWalk-v0", "expected_sarsa"): (FAST, 50_000, 500),
    ("lab/CliffWalk-v0", "double_q_learning"): (CLIFF_DOUBLE_Q, 400_000, 2_000),
    ("lab/CliffWalk-v0", "monte_carlo"): (CLIFF_MONTE_CARLO, 1_000_000, 5_000),
    ("lab/IceLake8x8-v0", "q_learning"): (BIG_LAKE, 1_500_000, 5_000),
    ("lab/IceLake8x8-v0", "sarsa"): (BIG_LAKE_ON_POLICY, 1_500_000, 5_000),
    ("lab/IceLake8x8-v0", "expected_sarsa"): (BIG_LAKE_ON_POLICY, 1_500_000, 5_000),
    ("lab/IceLake8x8-v0", "double_q_learning"): (BIG_LAKE, 1_500_000, 5_000),
    ("lab/IceLake8x8-v0", "monte_carlo"): (BIG_LAKE_MONTE_CARLO, 1_500_000, 5_000),
}


# ----- (a) speed -----


def best_rate(run: Callable[[], int], repeats: int) -> float:
    """The best of ``repeats`` runs, in steps per second (``run`` returns its step count)."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        steps = run()
        rates.append(steps / (time.perf_counter() - start))
    return max(rates)


def raw_env_rate(env_id: str, steps: int, repeats: int) -> float:
    env = gym.make(env_id)
    actions = np.random.default_rng(0).integers(env.action_space.n, size=steps).tolist()

    def run() -> int:
        step, reset = env.step, env.reset
        episode = 0
        reset(seed=episode_seed(0, episode))
        for action in actions:
            _, _, terminated, truncated, _ = step(action)
            if terminated or truncated:
                episode += 1
                reset(seed=episode_seed(0, episode))
        return steps

    return best_rate(run, repeats)


def learn_rate(env_id: str, steps: int, repeats: int, **hyperparameters: Any) -> float:
    def run() -> int:
        agent = AGENTS["q_learning"](gym.make(env_id), seed=0, gamma=GAMMA, **hyperparameters)
        agent.learn(steps)
        return steps

    return best_rate(run, repeats)


# ----- (b) steps to 1% -----


class Judge:
    """The exact relative gap of a greedy policy to the optimum at the start state."""

    def __init__(self, env: gym.Env) -> None:
        self.model = env.unwrapped.transition_model()
        self.optimum = value_iteration(self.model, GAMMA).start_value(self.model)

    def gap(self, policy: np.ndarray) -> float:
        try:
            value = float(self.model.initial @ policy_evaluation(self.model, policy, GAMMA))
        except PlanningError:  # never terminates from some state (only possible at gamma = 1)
            return float("inf")
        return abs(value - self.optimum) / abs(self.optimum)


def trace(env_id: str, name: str, hyperparameters: dict, budget: int, every: int, seed: int) -> dict:
    """Train one seed, judging the greedy policy every ``every`` steps."""
    env = gym.make(env_id)
    judge = Judge(env)
    agent = AGENTS[name](env, seed=seed, gamma=GAMMA, **hyperparameters)
    checkpoints: list[tuple[int, float]] = []
    next_check = [every]

    def check(event: dict) -> None:
        if event["timestep"] >= next_check[0]:
            checkpoints.append((event["timestep"], judge.gap(agent.greedy_policy())))
            next_check[0] = (event["timestep"] // every + 1) * every

    agent.learn(budget, callback=check)
    checkpoints.append((budget, judge.gap(agent.greedy_policy())))
    first = next((t for t, g in checkpoints if g <= TOLERANCE), None)
    settled = None
    for t, g in reversed(checkpoints):
        if g > TOLERANCE:
            break
        settled = t
    return {
        "first": first,
        "settled": settled,
        "final_gap": checkpoints[-1][1],
        "episodes": agent.num_episodes,
    }


def median_steps(values: list[int | None]) -> float:
    """The median, a seed that never got there counting as infinitely many steps."""
    return statistics.median([float("inf") if v is None else v for v in values])


def steps_text(value: float, budget: int) -> str:
    return f"> {budget:,}" if value == float("inf") else f"{value:,.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke test, not a measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    speed_steps = 20_000 if args.quick else 300_000
    seeds = 2 if args.quick else args.seeds
    scale = 0.1 if args.quick else 1.0
    results: dict[str, Any] = {"speed": {}, "to_one_percent": []}

    print(f"(a) Env steps per second, one core (best of {args.repeats})")
    print(
        f"  {'env':<20} {'raw env':>10} {'Q-learning eps=1':>17} {'overhead/step':>14} "
        f"{'Q-learning tuned':>17}"
    )
    for env_id in SPEED_ENVS:
        raw = raw_env_rate(env_id, speed_steps, args.repeats)
        random_agent = learn_rate(env_id, speed_steps, args.repeats, epsilon=1.0)
        tuned = learn_rate(env_id, speed_steps, args.repeats, **CONFIGS[(env_id, "q_learning")][0])
        overhead_us = (1.0 / random_agent - 1.0 / raw) * 1e6
        results["speed"][env_id] = {
            "raw_env": raw,
            "q_learning_eps1": random_agent,
            "q_learning_tuned": tuned,
            "overhead_us_per_step": overhead_us,
        }
        print(f"  {env_id:<20} {raw:>10,.0f} {random_agent:>17,.0f} {overhead_us:>11.2f} us {tuned:>17,.0f}")

    print(f"\n(b) Env steps until the greedy policy is within 1% of optimal (gamma {GAMMA}), {seeds} seeds")
    print(
        f"  {'env':<18} {'agent':<18} {'budget':>10} {'first (median)':>15} {'n':>4} "
        f"{'settled (median)':>17} {'n':>4} {'final gap':>10} {'s':>6}"
    )
    for (env_id, name), (hyperparameters, budget, every) in CONFIGS.items():
        budget = max(1000, int(budget * scale))
        every = max(100, int(every * scale))
        start = time.perf_counter()
        runs = [trace(env_id, name, hyperparameters, budget, every, seed) for seed in range(seeds)]
        seconds = time.perf_counter() - start
        first = median_steps([r["first"] for r in runs])
        settled = median_steps([r["settled"] for r in runs])
        n_first = sum(r["first"] is not None for r in runs)
        n_settled = sum(r["settled"] is not None for r in runs)
        final_gap = statistics.median(r["final_gap"] for r in runs)
        results["to_one_percent"].append(
            {
                "env": env_id,
                "agent": name,
                "hyperparameters": hyperparameters,
                "budget": budget,
                "runs": runs,
                "median_first": first,
                "median_settled": settled,
                "median_final_gap": final_gap,
            }
        )
        print(
            f"  {env_id.removeprefix('lab/'):<18} {name:<18} {budget:>10,} {steps_text(first, budget):>15} "
            f"{n_first:>2}/{seeds} {steps_text(settled, budget):>17} {n_settled:>2}/{seeds} "
            f"{final_gap:>9.2%} {seconds:>6.1f}"
        )
    print("\nHyperparameters (gamma 0.99):")
    for (env_id, name), (hyperparameters, _, _) in CONFIGS.items():
        print(f"  {env_id.removeprefix('lab/'):<18} {name:<18} {json.dumps(hyperparameters)}")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
