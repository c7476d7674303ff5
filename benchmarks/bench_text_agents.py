"""Agents collecting from the text env: the batched ``TextVectorEnv`` against a ``SyncVectorEnv`` of
flattened single envs (what ``agents.common.vector.make_vector_env`` gave before it kept the batched
implementation under ``FlattenObservation``).

    python benchmarks/bench_text_agents.py            # about three minutes
    python benchmarks/bench_text_agents.py --quick    # smaller counts, for a smoke test

Measures, on ``lab/TextPositive-v0`` as ``lab.core.environments.make_env`` makes it:
- collection alone: env steps per second of the vector env an agent collects from, stepped with
  uniformly random tokens (the flattened observations included), at 1 and 16 copies;
- PPO (``n_steps * n_envs = 256``, 4 epochs, the GRU token encoder) learning, env steps per
  second of ``learn()`` over the same budget, at 1 and 16 copies: the same seed gives the same
  numbers on both paths (``tests/test_text_agents_vector.py``), so only the time differs.

Each figure is the median of ``--repeats`` runs, the two paths interleaved (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import gymnasium as gym
import numpy as np
import torch

from agents.common.vector import make_vector_env
from agents.ppo import PPO
from lab.core.environments import make_env

TEXT_ID = "lab/TextPositive-v0"


def vector(path: str, env: gym.Env, n: int) -> gym.vector.VectorEnv:
    if path == "sync":
        return gym.make_vec(env.spec, num_envs=n, vectorization_mode="sync")
    return make_vector_env(env, n)


def collect_rate(path: str, n: int, steps: int) -> float:
    vec = vector(path, make_env(TEXT_ID), n)
    vec.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, vec.single_action_space.n, size=(steps // n, n))
    start = time.perf_counter()
    for row in actions:
        vec.step(row)
    return len(actions) * n / (time.perf_counter() - start)


def ppo_rate(path: str, n: int, steps: int) -> float:
    env = make_env(TEXT_ID)
    given = vector(path, env, n) if path == "sync" else env  # the agent makes its batched copies itself
    agent = PPO(given, seed=0, n_envs=n, n_steps=256 // n, batch_size=64, n_epochs=4)
    start = time.perf_counter()
    agent.learn(steps)
    return agent.num_timesteps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    collect_steps, ppo_steps = (4_000, 1_024) if args.quick else (40_000, 4_096)
    for what, measure, steps in (
        ("collection", collect_rate, collect_steps),
        ("PPO learn", ppo_rate, ppo_steps),
    ):
        for n in (1, 16):
            rates: dict[str, list[float]] = {"sync": [], "batched": []}
            for _ in range(args.repeats):
                for path in rates:
                    rates[path].append(measure(path, n, steps))
            before, after = (statistics.median(rates[p]) for p in ("sync", "batched"))
            print(
                f"{what:10s} n_envs={n:2d}  SyncVectorEnv {before:9.0f}/s  TextVectorEnv {after:9.0f}/s  "
                f"{after / before:5.2f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
