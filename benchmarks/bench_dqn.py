"""Our DQN and stable-baselines3's side by side on CartPole-v1, rl-baselines3-zoo hyperparameters.

    python benchmarks/bench_dqn.py               # 3 seeds each, 50k steps
    python benchmarks/bench_dqn.py --seeds 1     # one seed each
    python benchmarks/bench_dqn.py --quick       # one seed each, each run stops once it reaches 475
    python benchmarks/bench_dqn.py --seeds 20 --stop  # 20 seeds each, each run stopping at 475
    python benchmarks/bench_dqn.py --seeds 80 --first-seed 80 --stop  # seeds 80-159
    python benchmarks/bench_dqn.py --repeat 3    # each seed's runs 3 times, the median seconds kept
    python benchmarks/bench_dqn.py --pairs 10    # seed 2 ten times a side in turn
    python benchmarks/bench_dqn.py --study 40    # env steps to 475 over 40 seeds a side (2 processes)
    python benchmarks/bench_dqn.py --copies 4 16 64  # env steps/s from that many copies of the env
    python benchmarks/bench_dqn.py --pixels      # env steps/s from 36x36 maze frames through the CNN

The two draw their random numbers differently (initial weights, exploration, replay batches, env
seeds), so the same seed makes different runs: compare env steps over several seeds (``--study``),
and wall-clock per env step. ``tests/test_dqn.py`` checks that a gradient step is the same as SB3's.

Every 1,000 environment steps (mid-episode when it falls there, for both) a 10-episode
deterministic evaluation runs on a separate env; the figures are the env steps and the
training wall-clock seconds (evaluation time excluded) when it first reaches 475, and the final
evaluation's mean return. One process, torch and numpy's BLAS at one thread; the sides take turns
seed by seed (see ``cartpole_race.race``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# numpy's BLAS (used by our greedy action) at one thread, as torch below: each side races on one
# core. Set before numpy is imported; OpenBLAS reads it once.
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = "1"

import gymnasium as gym
import torch
from cartpole_race import (
    Clock,
    EvaluateEvery,
    Reached,
    add_race_arguments,
    pairs,
    print_table,
    race,
    study,
)

from lab.zoo import zoo_entry

ZOO_FILE = Path(__file__).resolve().parent.parent / "configs" / "zoo" / "dqn.yml"
ZOO, _ = zoo_entry(ZOO_FILE, "CartPole-v1")  # the rl-baselines3-zoo set, as lab train --zoo reads it
STEPS = 50_000


def run_ours(seed: int, stop_at_target: bool = False) -> Clock:
    from agents.dqn import DQN

    hp = {k: v for k, v in ZOO.items() if k != "gamma"}
    clock = Clock()

    def check(step: int) -> None:  # every 1,000 steps, exactly as SB3's callback below
        clock.check(step, lambda o: agent.predict(o)[0], seed)
        if stop_at_target and clock.reached:
            raise Reached

    agent = DQN(EvaluateEvery(gym.make("CartPole-v1"), 1000, check), seed=seed, gamma=ZOO["gamma"], **hp)
    clock.start = time.perf_counter()  # from here, as SB3's clock starts after its model is built
    with contextlib.suppress(Reached):  # the wrapper's evaluation at step 50,000 is the final one
        agent.learn(STEPS)
    return clock


def run_sb3(seed: int, stop_at_target: bool = False) -> Clock:
    from stable_baselines3 import DQN as SB3DQN
    from stable_baselines3.common.callbacks import BaseCallback

    model = SB3DQN("MlpPolicy", gym.make("CartPole-v1"), seed=seed, device="cpu", verbose=0, **ZOO)
    clock = Clock()

    class Every1000(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % 1000 == 0:
                clock.check(self.num_timesteps, lambda o: model.predict(o, deterministic=True)[0], seed)
            return not (stop_at_target and clock.reached)

    model.learn(STEPS, callback=Every1000())
    return clock


def throughput_in_turns(
    make_ours: Callable[[int], Any], make_sb3: Callable[[int], Any], steps: int, turns: int
) -> tuple[float, float]:
    """Env steps/s of whole ``steps``-step runs, ours and SB3's taking turns (each ``make`` builds
    a side's model for a turn's number, used as its seed): the medians of ``turns`` runs a side."""
    import statistics

    rates: tuple[list[float], list[float]] = ([], [])
    for turn in range(turns):
        for make, side in ((make_ours, rates[0]), (make_sb3, rates[1])):
            model = make(turn)
            start = time.perf_counter()
            model.learn(steps)
            side.append(model.num_timesteps / (time.perf_counter() - start))
    return statistics.median(rates[0]), statistics.median(rates[1])


def copies_throughput(n_envs: int, turns: int = 3) -> None:
    """Env steps/s of whole 50k-step runs with the zoo set on ``n_envs`` copies of the env (no
    evaluations): ours (``n_envs``, the env's batched version) and SB3's (``make_vec_env``), in
    turns. ``train_freq`` and ``gradient_steps`` keep SB3's meaning (steps of all copies at once),
    so both sides take the same gradient steps."""
    from stable_baselines3 import DQN as SB3DQN
    from stable_baselines3.common.env_util import make_vec_env

    from agents.dqn import DQN

    hp = {k: v for k, v in ZOO.items() if k != "gamma"}

    def ours(seed: int) -> DQN:
        return DQN(gym.make("CartPole-v1"), seed=seed, gamma=ZOO["gamma"], n_envs=n_envs, **hp)

    def sb3(seed: int) -> SB3DQN:
        venv = make_vec_env("CartPole-v1", n_envs=n_envs, seed=seed)
        return SB3DQN("MlpPolicy", venv, seed=seed, device="cpu", verbose=0, **ZOO)

    a, b = throughput_in_turns(ours, sb3, STEPS, turns)
    print(f"{n_envs:>6} copies: ours {a:>9,.0f} env steps/s, SB3 {b:>9,.0f}, ratio {a / b:.1f}x")


def pixels_throughput(steps: int = 10_000, turns: int = 2) -> None:
    """Env steps/s of ``configs/maze-pixels-dqn.yaml``'s hyperparameters on the maze's 36x36 RGB
    frames, ``steps`` a run: ours (the Nature CNN, 64 features, then the Q head) and SB3's
    ``CnnPolicy`` built the same (``features_dim=64``, no hidden layer after it), in turns."""
    from stable_baselines3 import DQN as SB3DQN

    import envs  # noqa: F401  (registers the lab/ ids)
    from agents.dqn import DQN
    from lab.spec import load_spec_file

    spec = load_spec_file(ZOO_FILE.parent.parent / "maze-pixels-dqn.yaml")
    hp = {k: v for k, v in spec["hyperparameters"].items() if k != "policy_kwargs"}
    features = spec["hyperparameters"]["policy_kwargs"]["net_arch"][0]
    sb3_policy = {"features_extractor_kwargs": {"features_dim": features}, "net_arch": []}

    def ours(seed: int) -> DQN:
        env = gym.make(spec["env"], **spec["env_kwargs"])
        return DQN(env, seed=seed, policy_kwargs={"net_arch": [features]}, **hp)

    def sb3(seed: int) -> SB3DQN:
        env = gym.make(spec["env"], **spec["env_kwargs"])
        return SB3DQN("CnnPolicy", env, seed=seed, device="cpu", verbose=0, policy_kwargs=sb3_policy, **hp)

    a, b = throughput_in_turns(ours, sb3, steps, turns)
    print(f"lab/Maze-v0 pixels (36x36x3), {steps:,} env steps a run, median of {turns} a side:")
    print(f"  ours {a:,.0f} env steps/s, SB3 {b:,.0f}, ratio {a / b:.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one seed; stop each run once it reaches 475")
    parser.add_argument("--pixels", action="store_true", help="env steps/s from the maze's frames")
    parser.add_argument("--copies", type=int, nargs="+", help="env steps/s from that many env copies")
    add_race_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.pixels:
        pixels_throughput()
        return 0
    if args.copies:
        print(f"CartPole-v1, rl-zoo DQN hyperparameters, {STEPS:,} env steps a run, median of 3 a side:")
        for n_envs in args.copies:
            copies_throughput(n_envs)
        return 0
    if args.pairs:  # seed 2 is the median seed of the three-seed race
        pairs(run_ours, run_sb3, 2 if args.pair_seed is None else args.pair_seed, args.pairs)
        return 0
    if args.study:
        study({"ours": run_ours, "stable-baselines3": run_sb3}, args.study, args.first_seed, args.jobs)
        return 0
    if args.quick:
        args.seeds = 1
    runs = {"ours": run_ours, "stable-baselines3": run_sb3}
    clocks = race(runs, args.seeds, args.quick or args.stop, args.repeat, args.first_seed)
    print_table("CartPole-v1, rl-zoo DQN hyperparameters", clocks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
