"""Our DQN and stable-baselines3's on LunarLander-v3 with the rl-baselines3-zoo set: learning curves.

    python benchmarks/bench_dqn_lunar.py              # 3 seeds a side, 100k steps, 2 processes
    python benchmarks/bench_dqn_lunar.py --seeds 1 --steps 50000

Needs Box2D (``pip install -e '.[box2d]'``). The zoo set (``configs/zoo/dqn.yml``: 100k steps, one
gradient step per env step, epsilon 0.1 after 12% of training) is the one rl-baselines3-zoo
publishes for DQN; LunarLander counts as solved at a mean return of 200. Every 10,000 steps a
10-episode greedy evaluation runs on a separate env (the same episode seeds for both agents); the
table is the evaluations of each run, so one sees whether an agent gets there and whether it stays.
Torch at one thread per process; seconds include the evaluations.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

# numpy's BLAS (used by our hand-written steps) at one thread, as torch below: each side races on one
# core. Set before numpy is imported; OpenBLAS reads it once.
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = "1"

import gymnasium as gym
import numpy as np
import torch
from cartpole_race import EvaluateEvery, evaluate

from lab.zoo import zoo_entry

ENV = "LunarLander-v3"
ZOO, STEPS = zoo_entry(Path(__file__).resolve().parent.parent / "configs" / "zoo" / "dqn.yml", ENV)
EVAL_EVERY = 10_000
SOLVED = 200.0


def run(side: str, seed: int, steps: int) -> tuple[list[float], float]:
    """``(evaluation returns every EVAL_EVERY steps, seconds)`` of one run."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    if side == "ours":
        from agents.dqn import DQN

        hp = {k: v for k, v in ZOO.items() if k != "gamma"}
        ours: list[float] = []
        env = EvaluateEvery(
            gym.make(ENV),
            EVAL_EVERY,
            lambda _: ours.append(evaluate(lambda o: agent.predict(o)[0], seed, ENV)),
        )
        agent = DQN(env, seed=seed, gamma=ZOO["gamma"], **hp)
        agent.learn(steps)
        return ours, time.perf_counter() - start
    from stable_baselines3 import DQN as SB3DQN
    from stable_baselines3.common.callbacks import BaseCallback

    model = SB3DQN("MlpPolicy", gym.make(ENV), seed=seed, device="cpu", verbose=0, **ZOO)
    returns: list[float] = []

    class Every(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % EVAL_EVERY == 0:
                returns.append(evaluate(lambda o: model.predict(o, deterministic=True)[0], seed, ENV))
            return True

    model.learn(steps, callback=Every())
    return returns, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    sides = ("ours", "stable-baselines3")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {(side, seed): pool.submit(run, side, seed, args.steps) for side in sides for seed in seeds}
        results = {key: future.result() for key, future in futures.items()}
    marks = "".join(f"{(k + 1) * EVAL_EVERY // 1000:>7}k" for k in range(args.steps // EVAL_EVERY))
    print(f"\n{ENV}, rl-zoo DQN set, 10-episode greedy evaluations:\n  {'':<24}{marks}   seconds")
    for side in sides:
        finals, solved = [], 0
        for seed in seeds:
            returns, seconds = results[side, seed]
            finals.append(returns[-1])
            solved += any(r >= SOLVED for r in returns)
            print(f"  {side:<18} seed {seed}" + "".join(f"{r:8.1f}" for r in returns) + f"   {seconds:6.0f}")
        print(f"  {side:<18} reached {SOLVED:g} in {solved}/{args.seeds} runs; final evaluations: median "
              f"{np.median(finals):.1f}, mean {np.mean(finals):.1f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
