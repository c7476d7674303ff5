"""REINFORCE, A2C and PPO learn: CartPole to 475, Pendulum to -250, a maze from symbolic planes to
the planner's optimum (fixed seeds; configs and rl-zoo files from configs/)."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

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


def test_ppo_balances_cartpole_with_the_zoo_hyperparameters():
    hp, steps = zoo_entry(CONFIGS / "zoo" / "ppo.yml", "CartPole-v1")
    agent = AGENTS["ppo"](gym.make("CartPole-v1"), seed=0, **hp)
    assert best_greedy_return(agent, "CartPole-v1", steps, 5000, 475) >= 475


def test_a2c_balances_cartpole_with_the_zoo_hyperparameters():
    hp, steps = zoo_entry(CONFIGS / "zoo" / "a2c.yml", "CartPole-v1")
    agent = AGENTS["a2c"](gym.make("CartPole-v1"), seed=0, **hp)
    assert best_greedy_return(agent, "CartPole-v1", steps, 10_000, 475) >= 475


def test_reinforce_balances_cartpole():
    spec = load_spec_file(CONFIGS / "cartpole-reinforce.yaml")
    agent = AGENTS["reinforce"](gym.make("CartPole-v1"), seed=spec["seed"], **spec["hyperparameters"])
    assert best_greedy_return(agent, "CartPole-v1", spec["total_timesteps"], 10_000, 475) >= 475


def test_ppo_swings_up_the_pendulum():
    hp, steps = zoo_entry(CONFIGS / "zoo" / "ppo.yml", "Pendulum-v1")
    agent = AGENTS["ppo"](gym.make("Pendulum-v1"), seed=1, **hp)
    agent.learn(steps)
    assert greedy_return(agent, "Pendulum-v1") >= -250


def test_ppo_learns_a_maze_from_symbolic_planes_to_the_optimum(tmp_path):
    quiet = ["eval_interval=0", "checkpoint_interval=0", "record_episodes=0", "eval_episodes=1"]
    spec = spec_from_args(str(CONFIGS / "maze-symbolic-ppo.yaml"), None, None, None, None, None, quiet)
    [(_, result)] = train(spec, runs_dir=tmp_path, progress=False)
    assert result.relative_gap < 0.05, result.summary()
