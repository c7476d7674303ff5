"""stable-baselines3 accepts every environment and observation type, and PPO trains on each; our
agents count ``learn``'s steps as stable-baselines3 does."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import ALL_IDS
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env

from envs.grid import OBS_TYPES


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small(obs_type: str) -> dict:
    return {"obs_tile_size": 4} if obs_type == "pixels" else {}


@pytest.mark.parametrize("obs_type", OBS_TYPES)
@pytest.mark.parametrize("env_id", ALL_IDS)
def test_sb3_check_env(env_id, obs_type):
    env = gym.make(env_id, obs_type=obs_type)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, warn=True)
    # sb3 only remarks that symbolic planes and small pixel frames do not suit its CNN policy
    unexpected = [str(w.message) for w in caught if "image" not in str(w.message)]
    assert unexpected == []


@pytest.mark.parametrize("obs_type", OBS_TYPES)
@pytest.mark.parametrize("env_id", ALL_IDS)
def test_ppo_trains(env_id, obs_type):
    env = gym.make(env_id, obs_type=obs_type, **small(obs_type))
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=64,
        batch_size=32,
        n_epochs=1,
        seed=0,
        device="cpu",
        policy_kwargs={"net_arch": [16]},
    )
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=256)
    assert model.num_timesteps == 256
    after = list(model.policy.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True)), "no parameter changed"
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))
    env.close()


def test_ppo_on_grid_vector_env_through_sb3_wrapper():
    # sb3 can also learn from many copies made by gymnasium.make (no vector-specific API needed)
    from stable_baselines3.common.env_util import make_vec_env

    venv = make_vec_env(lambda: gym.make("lab/CliffWalk-v0", obs_type="onehot"), n_envs=2, seed=0)
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=32,
        batch_size=32,
        n_epochs=1,
        seed=0,
        device="cpu",
        policy_kwargs={"net_arch": [16]},
    )
    model.learn(total_timesteps=64)
    assert model.num_timesteps == 64
    obs = venv.reset()
    assert obs.shape == (2, 48) and np.all(obs.sum(axis=1) == 1)


@pytest.mark.parametrize("name", ["dqn", "ppo", "q_learning"])
def test_learn_without_resetting_takes_that_many_more_steps_as_sb3_does(name):
    """A loop of ``learn(n, reset_num_timesteps=False)`` trains n more steps each time, over a
    schedule that runs to the whole count, as stable-baselines3's (a loop an SB3 user writes to save
    every n steps)."""
    from stable_baselines3 import DQN

    from agents import AGENTS

    if name == "q_learning":
        agent = AGENTS[name](gym.make("lab/CliffWalk-v0"), seed=0)
    else:
        small = {"n_envs": 2, "n_steps": 16, "batch_size": 32} if name == "ppo" else {"learning_starts": 50}
        agent = AGENTS[name](gym.make("CartPole-v1"), seed=0, **small)
    agent.learn(100)
    for more in (100, 60, 0):
        before = agent.num_timesteps
        agent.learn(more, reset_num_timesteps=False)
        assert agent._total_timesteps == before + more
        # PPO finishes its last rollout of 2 x 16 steps, as SB3's does; the others stop at the count
        assert before + more <= agent.num_timesteps < before + more + (32 if name == "ppo" and more else 1)
    agent.learn(50)  # reset: a fresh count
    assert agent.num_timesteps < 50 + 32 and agent._total_timesteps == 50

    model = DQN("MlpPolicy", gym.make("CartPole-v1"), learning_starts=50, seed=0, device="cpu")
    model.learn(100)
    model.learn(100, reset_num_timesteps=False)
    assert model.num_timesteps == model._total_timesteps == 200
