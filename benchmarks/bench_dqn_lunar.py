"""Our DQN and stable-baselines3's on LunarLander-v3, side by side: learning curves.

    python benchmarks/bench_dqn_lunar.py              # the zoo set, 3 seeds a side, 100k steps, 2 processes
    python benchmarks/bench_dqn_lunar.py --seeds 1 --steps 50000
    python benchmarks/bench_dqn_lunar.py --spec configs/lunarlander-dqn.yaml --eval-every 25000

Needs Box2D (``pip install -e '.[box2d]'``). By default both run the set rl-baselines3-zoo publishes
for DQN (``configs/zoo/dqn.yml``: 100k steps, one gradient step per env step, epsilon 0.1 after 12%
of training); ``--spec`` takes the hyperparameters and step count of a ``lab train`` spec instead.
LunarLander counts as solved at a mean return of 200. Every ``--eval-every`` steps (10,000) a
10-episode greedy evaluation runs on a separate env (the same episode seeds for both agents); the
table is the evaluations of each run, so one sees whether an agent gets there and whether it stays.
Torch and numpy's BLAS at one thread per process; seconds include the evaluations.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

# numpy's BLAS (used by our greedy action) at one thread, as torch below: each side races on one
# core. Set before numpy is imported; OpenBLAS reads it once.
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = "1"

import gymnasium as gym
import numpy as np
import torch
from cartpole_race import EvaluateEvery, evaluate, sb3_hyperparameters

from lab.spec import load_spec_file, spec_from_dict
from lab.zoo import zoo_entry

ENV = "LunarLander-v3"
ZOO, STEPS = zoo_entry(Path(__file__).resolve().parent.parent / "configs" / "zoo" / "dqn.yml", ENV)
SOLVED = 200.0


def run(side: str, seed: int, steps: int, hp: dict, every: int) -> tuple[list[float], float]:
    """``(evaluation returns every ``every`` steps, seconds)`` of one run with hyperparameters ``hp``."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    if side == "ours":
        from agents.dqn import DQN

        ours: list[float] = []
        env = EvaluateEvery(
            gym.make(ENV), every, lambda _: ours.append(evaluate(lambda o: agent.predict(o)[0], seed, ENV))
        )
        agent = DQN(env, seed=seed, **hp)
        agent.learn(steps)
        return ours, time.perf_counter() - start
    from stable_baselines3 import DQN as SB3DQN
    from stable_baselines3.common.callbacks import BaseCallback

    model = SB3DQN("MlpPolicy", gym.make(ENV), seed=seed, device="cpu", verbose=0, **sb3_hyperparameters(hp))
    returns: list[float] = []

    class Every(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % every == 0:
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
    parser.add_argument("--steps", type=int, default=None, help="default: the zoo's 100k, or the spec's")
    parser.add_argument("--spec", default=None, help="take hyperparameters and steps from this lab spec")
    parser.add_argument("--eval-every", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    hp, steps, label = dict(ZOO), STEPS, "rl-zoo DQN set"
    if args.spec:
        spec = spec_from_dict(load_spec_file(args.spec), args.spec)
        if spec.env != ENV or spec.agent != "dqn":
            parser.error(f"{args.spec} trains {spec.agent} on {spec.env}, not dqn on {ENV}")
        hp, steps, label = dict(spec.hyperparameters), spec.total_timesteps, Path(args.spec).name
    steps = args.steps or steps
    every = args.eval_every
    sides = ("ours", "stable-baselines3")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    results: dict[tuple[str, int], tuple[list[float], float]] = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {
            pool.submit(run, side, seed, steps, hp, every): (side, seed) for side in sides for seed in seeds
        }
        for n, future in enumerate(as_completed(futures), start=1):  # a line as each run ends
            side, seed = futures[future]
            results[side, seed] = returns, seconds = future.result()
            print(f"  {side} seed {seed} ({n}/{len(futures)} runs): final evaluation {returns[-1]:.1f}, "
                  f"{seconds:.0f} s", flush=True)  # fmt: skip
    marks = "".join(f"{(k + 1) * every // 1000:>7}k" for k in range(steps // every))
    print(f"\n{ENV}, {label}, 10-episode greedy evaluations:\n  {'':<24}{marks}   seconds")
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
