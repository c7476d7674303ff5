"""Greedy evaluation episodes one after another in one env, against side by side in copies of it.

    python benchmarks/bench_evaluation.py
    python benchmarks/bench_evaluation.py --episodes 100 --rounds 5

``lab train`` evaluates every ``eval_interval`` steps (20 episodes by default) and ``lab eval`` runs
100: :func:`lab.evaluation.evaluate` runs them side by side in up to 16 copies of the env
(:func:`lab.evaluation.eval_copies`), one ``predict`` call for all running copies. This times both
ways on the same agents and seeds (best of ``--rounds``, one torch thread) and checks that they
score the same episodes. The agents are trained briefly (the PPO agent's CartPole episodes then
run from a few steps to 500; the DQN agent's are still short).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = "1"

import gymnasium as gym
import torch

from lab.core.environments import make_env
from lab.evaluation import eval_copies, evaluate


def agents() -> list[tuple[str, object, Callable[[], gym.Env]]]:
    from agents.dqn import DQN
    from agents.ppo import PPO
    from agents.tabular import QLearning

    def cartpole() -> gym.Env:
        return gym.make("CartPole-v1")

    def ice() -> gym.Env:
        return make_env("lab/IceLake-v0")

    ppo = PPO(cartpole(), seed=0, n_envs=8, n_steps=32, batch_size=256, n_epochs=20, learning_rate=1e-3)
    ppo.learn(20_000)
    dqn = DQN(cartpole(), seed=0, learning_starts=1_000, exploration_fraction=0.2)
    dqn.learn(15_000)
    tabular = QLearning(ice(), seed=1, gamma=0.99, initial_q=1.0)
    tabular.learn(30_000)
    return [("PPO, CartPole-v1", ppo, cartpole), ("DQN, CartPole-v1", dqn, cartpole),
            ("Q-learning, lab/IceLake-v0", tabular, ice)]  # fmt: skip


def best_time(agent: object, env: gym.Env | list[gym.Env], episodes: int, rounds: int) -> tuple[float, Any]:
    """The best of ``rounds`` evaluations' seconds, and the last one's result."""
    times, result = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        result = evaluate(agent, env, episodes, seed=0)
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, default=20, help="episodes an evaluation runs")
    parser.add_argument("--rounds", type=int, default=3, help="timed evaluations each way (the best kept)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{args.episodes} greedy episodes, best of {args.rounds}:")
    for name, agent, make in agents():
        one_env, copies = make(), eval_copies(make, args.episodes)
        one_s, one = best_time(agent, one_env, args.episodes, args.rounds)
        many_s, many = best_time(agent, copies, args.episodes, args.rounds)
        same = (one.returns, one.lengths) == (many.returns, many.lengths)
        steps = sum(one.lengths)
        print(f"  {name:<28} {steps:>6,} env steps; one env {one_s * 1e6 / steps:6.1f} us a step, "
              f"{len(copies)} copies {many_s * 1e6 / steps:5.1f} us: {one_s / many_s:.1f}x; "
              f"same episodes: {same}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
