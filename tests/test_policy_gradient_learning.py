"""REINFORCE, A2C and PPO learn: CartPole to 475, Pendulum to -250, a maze from symbolic planes to
the planner's optimum (configs and rl-zoo files from configs/).

One seed's learning curve can turn on rounding: the same code on another CPU (an AVX-512 Xeon rather
than this AMD machine) or after an arithmetically equivalent change (torch's fused Adam kernel instead
of its foreach one) sends training down another path, and a single-seed assertion then passes on one
machine and fails on the other. So each test trains several seeds under a stated rule (see
:func:`seeds_pass`) and reports every seed's outcome when it fails. The two that take more than a few
seconds (Pendulum, the maze) are marked ``slow``: ``-m "not slow"`` deselects them, the default run
includes them.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import seeds_pass

import envs  # noqa: F401  (registers the lab/ ids)
from agents import AGENTS
from lab.spec import load_spec_file
from lab.train import spec_from_args, train
from lab.zoo import zoo_entry

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def greedy_return(agent, env_id: str, episodes: int = 10) -> float:
    env = gym.make(env_id)
    returns = []
    for k in range(episodes):
        obs, _ = env.reset(seed=1000 + k)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(agent.predict(obs)[0])
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


def best_greedy_return(agent, env_id: str, steps: int, every: int, target: float) -> float:
    """Train, evaluating greedily at the first episode end after every ``every`` steps; stop at ``target``."""
    best, next_eval = -np.inf, every

    def check(event):
        nonlocal best, next_eval
        if event["timestep"] < next_eval:
            return None
        next_eval = (event["timestep"] // every + 1) * every
        best = max(best, greedy_return(agent, env_id))
        return best < target

    agent.learn(steps, callback=check)
    return best


def reaches(
    algo: str, env_id: str, hp: dict, seed: int, steps: int, every: int, target: float
) -> tuple[bool, str]:
    """A trial of :func:`seeds_pass`: ``algo`` from ``seed`` reaches ``target`` within ``steps``."""
    agent = AGENTS[algo](gym.make(env_id), seed=seed, **hp)
    best = best_greedy_return(agent, env_id, steps, every, target)
    return best >= target, f"best greedy return {best:.1f} by step {agent.num_timesteps}"


def test_ppo_balances_cartpole_with_the_zoo_hyperparameters():
    hp, steps = zoo_entry(CONFIGS / "zoo" / "ppo.yml", "CartPole-v1")

    def trial(seed: int) -> tuple[bool, str]:
        return reaches("ppo", "CartPole-v1", hp, seed, steps, 5000, 475)

    # seeds 0-2 measured: 475 reached by 22k, 10k, 20k of the 100k steps
    seeds_pass(trial, seeds=(0, 1, 2), needed=2)


def test_a2c_balances_cartpole_with_the_zoo_hyperparameters():
    hp, steps = zoo_entry(CONFIGS / "zoo" / "a2c.yml", "CartPole-v1")

    def trial(seed: int) -> tuple[bool, str]:
        return reaches("a2c", "CartPole-v1", hp, seed, steps, 10_000, 475)

    # seeds 0-2 measured: 475 reached by 10k, 20k, 10k of the 500k steps
    seeds_pass(trial, seeds=(0, 1, 2), needed=2)


def test_reinforce_balances_cartpole():
    spec = load_spec_file(CONFIGS / "cartpole-reinforce.yaml")
    hp, steps = spec["hyperparameters"], spec["total_timesteps"]

    def trial(seed: int) -> tuple[bool, str]:
        return reaches("reinforce", "CartPole-v1", hp, seed, steps, 10_000, 475)

    # seeds 0-2 measured: 475 reached by 50k, 71k, 50k of the 300k steps
    seeds_pass(trial, seeds=(0, 1, 2), needed=2)


@pytest.mark.slow
def test_ppo_swings_up_the_pendulum():
    hp, steps = zoo_entry(CONFIGS / "zoo" / "ppo.yml", "Pendulum-v1")

    def trial(seed: int) -> tuple[bool, str]:
        agent = AGENTS["ppo"](gym.make("Pendulum-v1"), seed=seed, **hp)
        agent.learn(steps)
        final = greedy_return(agent, "Pendulum-v1")
        return final >= -250, f"greedy return {final:.1f} after {steps} steps"

    # seeds 0-3 measured: -195, -185, -232, -198 (2e5 steps; at 1e5 seed 2 ended at -301, and seeds 1
    # and 2 at -424 and -278 on torch's kernels without vector units: see configs/zoo/ppo.yml)
    # on an Intel Xeon with torch's own tanh (lab.nets' choice there): -196, -199, -233, -201
    seeds_pass(trial, seeds=(0, 1, 2), needed=2)


@pytest.mark.slow
def test_ppo_learns_a_maze_from_symbolic_planes_to_the_optimum(tmp_path):
    """configs/maze-symbolic-ppo.yaml as ``lab train`` runs it: the final greedy policy is exactly
    optimal (the planner's value from the start) for at least 2 of seeds 0, 1, 2. Its comment gives
    the spread measured over seeds 0-9, where every seed reached the optimum by 70k steps and kept it."""
    quiet = ["eval_interval=0", "checkpoint_interval=0", "record_episodes=0", "eval_episodes=1"]

    def trial(seed: int) -> tuple[bool, str]:
        spec = spec_from_args(str(CONFIGS / "maze-symbolic-ppo.yaml"), None, None, None, seed, None, quiet)
        [(_, result)] = train(spec, runs_dir=tmp_path / f"seed{seed}", progress=False)
        return abs(result.relative_gap) < 1e-9, result.summary()

    seeds_pass(trial, seeds=(0, 1, 2), needed=2)
