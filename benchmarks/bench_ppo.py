"""Our PPO and stable-baselines3's side by side, and PPO's throughput on the batched grid env.

    python benchmarks/bench_ppo.py               # CartPole race, 3 seeds each, then the grid env
    python benchmarks/bench_ppo.py --seeds 1
    python benchmarks/bench_ppo.py --grid-only
    python benchmarks/bench_ppo.py --grid-only --grid-turns 3  # ours and SB3 in turns, 3 runs a side
    python benchmarks/bench_ppo.py --grid-only --threads 2     # torch on two threads a side
    python benchmarks/bench_ppo.py --seeds 20 --stop --grid-steps 0  # 20 seeds, runs stop at 475
    python benchmarks/bench_ppo.py --seeds 60 --stop --grid-steps 0  # the race's medians, 10 minutes
    python benchmarks/bench_ppo.py --seeds 400 --first-seed 400 --stop --grid-steps 0  # seeds 400-799
    python benchmarks/bench_ppo.py --repeat 3    # each seed's runs 3 times, the median seconds kept
    python benchmarks/bench_ppo.py --pairs 10    # seed 1 ten times a side in turn (ours vs SB3)
    python benchmarks/bench_ppo.py --study 100   # env steps to 475 over 100 seeds a side (2 processes)

CartPole-v1 with the rl-baselines3-zoo hyperparameters (configs/zoo/ppo.yml: 8 envs, 32 steps each
per rollout, 20 epochs): after every rollout that crosses a multiple of 2,000 environment steps, a
10-episode deterministic evaluation runs on a separate env (for both agents, at a rollout's end).
The figures are the env steps and the training wall-clock seconds (evaluation time excluded) when
it first reaches 475, and the final evaluation. SB3 collects from a DummyVecEnv of 8 CartPoles,
ours from gymnasium's batched CartPoleVectorEnv (same dynamics). Both compute the same update
(``tests/test_policy_gradient.py`` checks a PPO update against SB3's), from their own random numbers,
so a seed's run differs between the sides: ``--study`` compares the env steps over many seeds. One
process; torch (``--threads``) and numpy's BLAS at one thread; the sides take turns seed by seed (see
``cartpole_race.race``).

Grid: PPO on lab/Maze-v0 (one-hot observations) from GridVectorEnv, 64 and 1,024 envs x 128 steps
per rollout, 4 epochs of 2,048-sample mini-batches: environment steps per second of collection plus
update, ours (eager, then with ``compile: true``, over the whole run and after the first two updates,
which hold the compiling) and SB3's (a DummyVecEnv of as many GridWorlds) with the same
hyperparameters over as many env steps as ours (its speed changes as training goes: 14% slower
over the second half of a million steps at 64 copies than over the first quarter, in one run); and the
share of the machine's matrix-multiply peak (a plain ``torch.mm`` loop) that our eager updates
reach, from torch's FLOP counter over one mini-batch's forward and backward pass. ``--threads``
sets torch's threads for both sides (and the peak's loop); numpy's BLAS stays at one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

# numpy's BLAS (our acting forward pass) at one thread, as torch below unless --threads says more:
# by default each side races on one core.
# Set before numpy is imported; OpenBLAS reads it once.
os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = "1"

import gymnasium as gym
import torch
from cartpole_race import (
    Clock,
    Reached,
    add_race_arguments,
    pairs,
    print_table,
    race,
    sb3_hyperparameters,
    study,
)

import envs  # noqa: F401  (registers the lab/ ids)
from lab.zoo import zoo_entry

if TYPE_CHECKING:
    from agents.ppo import PPO

ZOO_FILE = Path(__file__).resolve().parent.parent / "configs" / "zoo" / "ppo.yml"
ZOO, STEPS = zoo_entry(ZOO_FILE, "CartPole-v1")
EVAL_EVERY = 2_000
GRID = {
    "n_envs": 64,
    "n_steps": 128,
    "batch_size": 2048,
    "n_epochs": 4,
    "learning_rate": 1e-3,
    "ent_coef": 0.01,
}


def run_ours(seed: int, stop_at_target: bool = False) -> Clock:
    from agents.ppo import PPO

    hp = {k: v for k, v in ZOO.items() if k != "gamma"}
    clock = Clock()
    agent = PPO(gym.make("CartPole-v1"), seed=seed, gamma=ZOO["gamma"], **hp)
    update, next_eval = agent._update, EVAL_EVERY

    def update_then_evaluate(rollout):  # evaluate at the rollout's end, as SB3's callback below
        nonlocal next_eval
        update(rollout)
        if agent.num_timesteps >= next_eval:
            clock.check(agent.num_timesteps, lambda o: agent.predict(o)[0], seed)
            next_eval = (agent.num_timesteps // EVAL_EVERY + 1) * EVAL_EVERY
            if stop_at_target and clock.reached:
                raise Reached

    agent._update = update_then_evaluate
    clock.start = time.perf_counter()
    try:
        agent.learn(STEPS)
    except Reached:
        return clock
    clock.check(agent.num_timesteps, lambda o: agent.predict(o)[0], seed)
    return clock


def run_sb3(seed: int, stop_at_target: bool = False) -> Clock:
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env("CartPole-v1", n_envs=ZOO["n_envs"], seed=seed)
    model = SB3PPO("MlpPolicy", venv, seed=seed, device="cpu", verbose=0, **sb3_hyperparameters(ZOO))
    clock = Clock()
    next_eval = EVAL_EVERY

    class EveryRollout(BaseCallback):
        def _on_step(self) -> bool:
            return not (stop_at_target and clock.reached)

        def _on_rollout_start(self) -> None:  # after the previous rollout's update, like ours
            nonlocal next_eval
            if self.num_timesteps >= next_eval:
                clock.check(self.num_timesteps, lambda o: model.predict(o, deterministic=True)[0], seed)
                next_eval = (self.num_timesteps // EVAL_EVERY + 1) * EVAL_EVERY

    clock.start = time.perf_counter()
    model.learn(STEPS, callback=EveryRollout())
    if stop_at_target and clock.reached:
        return clock
    clock.check(model.num_timesteps, lambda o: model.predict(o, deterministic=True)[0], seed)
    return clock


def matmul_peak(size: int = 512, seconds: float = 1.0) -> float:
    """The machine's float32 matrix-multiply rate on this thread (FLOP/s): a plain ``torch.mm`` loop."""
    a, b, out = torch.randn(size, size), torch.randn(size, size), torch.empty(size, size)
    for _ in range(5):
        torch.mm(a, b, out=out)
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        torch.mm(a, b, out=out)
        calls += 1
    return 2 * size**3 * calls / elapsed


def minibatch_flops(agent, batch_size: int) -> float:
    """FLOPs of one PPO mini-batch step's forward and backward pass (torch's own FLOP counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    space = agent.env.observation_space
    obs = torch.as_tensor(space.sample()[None].repeat(batch_size, 0), dtype=torch.float32)
    with FlopCounterMode(display=False) as counter:
        logits, _, values = agent.policy(obs)
        (logits.logsumexp(-1).mean() + values.mean()).backward()
    agent.policy.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def run_grid_ours(hp: dict, steps: int, compile: bool) -> tuple[float, float, float, int, PPO]:
    """Our PPO on the grid env: ``(env steps/s over the run, env steps/s after the first two updates,
    seconds in updates, samples the updates trained on, the agent)``; the first two updates hold
    ``compile: true``'s compiling. The samples are counted as the updates run: a rollout's reset
    steps are no samples, so the env step count does not give the updates' work."""
    from agents.ppo import PPO

    agent = PPO(gym.make("lab/Maze-v0", obs_type="onehot"), seed=0, compile=compile, **hp)
    update, update_seconds, warm, trained = agent._update, [0.0], [], [0]

    def timed_update(rollout):  # the benchmark's stopwatch around each update
        start = time.perf_counter()
        update(rollout)
        update_seconds[0] += time.perf_counter() - start
        warm.append((time.perf_counter(), agent.num_timesteps))
        trained[0] += int(rollout.valid.sum()) * hp["n_epochs"]  # no target_kl: every epoch runs

    agent._update = timed_update
    start = time.perf_counter()
    agent.learn(steps)
    end = time.perf_counter()
    after = (agent.num_timesteps - warm[1][1]) / (end - warm[1][0]) if len(warm) > 2 else float("nan")
    return agent.num_timesteps / (end - start), after, update_seconds[0], trained[0], agent


def grid_throughput(steps: int, n_envs: int, peak: float, turns: int = 1) -> None:
    """Env steps/s of collection plus update, ours (GridVectorEnv; eager, then ``compile: true``) and
    SB3's (DummyVecEnv), and the share of the matrix-multiply peak our eager updates reach (their
    FLOPs over their seconds). With ``turns`` > 1 our eager run and SB3's take turns that many times
    and the medians are kept: the machine's speed drifts between runs by more than a third."""
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.env_util import make_vec_env

    hp = {**GRID, "n_envs": n_envs}
    steps = max(steps, 3 * n_envs * hp["n_steps"])  # at least three rollouts
    ours_runs, sb3_runs, update_seconds, trained = [], [], 0.0, 0
    for turn in range(1, turns + 1):
        ours, _, seconds, samples, agent = run_grid_ours(hp, steps, compile=False)
        ours_runs.append(ours)
        update_seconds += seconds
        trained += samples
        venv = make_vec_env("lab/Maze-v0", n_envs=n_envs, seed=0, env_kwargs={"obs_type": "onehot"})
        model = SB3PPO("MlpPolicy", venv, seed=0, device="cpu", verbose=0,
                       **{k: v for k, v in hp.items() if k != "n_envs"})  # fmt: skip
        start = time.perf_counter()
        model.learn(agent.num_timesteps)
        sb3_runs.append(model.num_timesteps / (time.perf_counter() - start))
        print(f"  {n_envs} copies, turn {turn}/{turns}: ours {ours:,.0f} env steps/s, stable-baselines3 "
              f"{sb3_runs[-1]:,.0f} ({ours / sb3_runs[-1]:.1f}x)", flush=True)  # fmt: skip
    fast, fast_after, fast_update_seconds, _, _ = run_grid_ours(hp, steps, compile=True)
    ours, sb3, done = statistics.median(ours_runs), statistics.median(sb3_runs), agent.num_timesteps
    # the FLOPs of the samples the updates trained on, over the updates' own seconds (all turns)
    share = minibatch_flops(agent, hp["batch_size"]) / hp["batch_size"] * trained / update_seconds / peak
    update_seconds /= turns
    runs = f"the median of {turns} runs" if turns > 1 else "one run"
    print(f"\nPPO on lab/Maze-v0 (one-hot), {n_envs} envs x {hp['n_steps']} steps, {hp['n_epochs']} "
          f"epochs of {hp['batch_size']}; {done:,} env steps a run, {runs} a side:")  # fmt: skip
    print(f"  ours (GridVectorEnv)            {ours:>10,.0f} env steps/s")
    print(f"  ours, compile: true             {fast:>10,.0f} env steps/s, compiling included; "
          f"{fast_after:,.0f} after the first two updates (one run)")  # fmt: skip
    print(f"  stable-baselines3 (DummyVecEnv) {sb3:>10,.0f} env steps/s")
    print(f"  ratio ours / sb3: {ours / sb3:.1f}x (target >= 3); compile: true {fast / sb3:.1f}x, "
          f"{fast_after / sb3:.1f}x after the first two updates")  # fmt: skip
    print(f"  our updates: {update_seconds / done * 1e6:.2f} us per env step, {share:.1%} of the "
          f"matrix-multiply peak; compile: true {fast_update_seconds / done * 1e6:.2f} us, "
          "compiling included")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--grid-only", action="store_true")
    parser.add_argument(
        "--grid-steps", type=int, default=500_000, help="env steps of each grid run; 0: no grid runs"
    )
    parser.add_argument("--grid-envs", type=int, nargs="+", default=[64, 1024], help="copies of the grid env")
    parser.add_argument(
        "--grid-turns", type=int, default=1, help="eager grid runs a side, in turns (the medians are kept)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads a side in the races and grid runs (default 1)"
    )
    add_race_arguments(parser)
    args = parser.parse_args()
    if args.threads < 1:
        parser.error(f"--threads must be 1 or more; got {args.threads}")
    torch.set_num_threads(args.threads)
    if args.pairs:  # seed 1 is the median seed of the three-seed race
        pairs(run_ours, run_sb3, 1 if args.pair_seed is None else args.pair_seed, args.pairs)
        return 0
    if args.study:
        runs = {"ours": run_ours, "stable-baselines3": run_sb3}
        study(runs, args.study, args.first_seed, args.jobs, every=EVAL_EVERY)
        return 0
    if not args.grid_only:
        runs = {"ours": run_ours, "stable-baselines3": run_sb3}
        clocks = race(runs, args.seeds, args.stop, args.repeat, args.first_seed)
        print_table("CartPole-v1, rl-zoo PPO hyperparameters", clocks)
    if args.grid_steps <= 0:
        return 0
    peak = matmul_peak()
    threads = "one thread" if args.threads == 1 else f"{args.threads} threads"
    print(f"\ntorch.mm peak on {threads} (512 x 512 float32): {peak / 1e9:.1f} GFLOP/s")
    for n_envs in args.grid_envs:
        grid_throughput(args.grid_steps, n_envs, peak, args.grid_turns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
