"""Agents collect from the batched TextVectorEnv and see exactly what flattened single envs give."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.common.vector import FlattenBatch, make_vector_env
from agents.dqn import DQN
from agents.ppo import PPO
from envs import TextVectorEnv
from lab.core.environments import make_env

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def sync_copies(env: gym.Env, n: int) -> gym.vector.VectorEnv:
    """What agents collected from before: a SyncVectorEnv of the flattened single envs."""
    return gym.make_vec(env.spec, num_envs=n, vectorization_mode="sync")


@pytest.mark.parametrize(
    ("env_id", "kwargs"), [("lab/TextPositive-v0", {}), ("lab/TextArithmetic-v0", {"max_operand": 9})]
)
def test_the_flattened_text_env_is_collected_from_its_batched_implementation(env_id, kwargs):
    env = make_env(env_id, kwargs)
    n = 5
    ours, ref = make_vector_env(env, n), sync_copies(env, n)
    assert isinstance(ours, FlattenBatch) and isinstance(ours.unwrapped, TextVectorEnv)
    assert isinstance(ref, gym.vector.SyncVectorEnv)
    assert ours.single_observation_space == ref.single_observation_space == env.observation_space
    a, b = ours.reset(seed=3), ref.reset(seed=3)
    np.testing.assert_array_equal(a[0], b[0])
    rng, ends = np.random.default_rng(0), 0
    for t in range(200):
        actions = rng.integers(env.action_space.n, size=n)
        x, y = ours.step(actions), ref.step(actions)
        assert x[0].dtype == y[0].dtype == np.int64
        for i, what in enumerate(("obs", "reward", "terminated", "truncated")):
            np.testing.assert_array_equal(x[i], y[i], err_msg=f"step {t} {what}")
        ends += int((x[2] | x[3]).sum())
    assert ends > 2 * n  # autoresets were crossed


def test_a_dict_of_non_box_spaces_falls_back_to_gymnasiums_flatten():
    space = gym.spaces.Dict({"a": gym.spaces.Discrete(3), "b": gym.spaces.Box(0, 1, (2,))})
    vec = gym.vector.SyncVectorEnv([lambda: _ConstantEnv(space)] * 2)
    obs, _ = FlattenBatch(vec).reset(seed=0)
    np.testing.assert_array_equal(obs, [[0, 1, 0, 0.5, 0.5]] * 2)  # Discrete(3) one-hot, then the Box


class _ConstantEnv(gym.Env):
    def __init__(self, space: gym.spaces.Space) -> None:
        self.observation_space, self.action_space = space, gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        return {"a": 1, "b": np.full(2, 0.5, np.float32)}, {}


def trained(agent_class, env_or_vec, **kwargs):
    episodes: list[tuple[float, int]] = []
    agent = agent_class(env_or_vec, seed=4, **kwargs)
    agent.learn(400, callback=lambda e: episodes.append((e["return"], e["length"])) or True)
    return agent, episodes


@pytest.mark.parametrize(
    ("agent_class", "kwargs"),
    [
        (PPO, {"n_envs": 4, "n_steps": 32, "batch_size": 64, "policy_kwargs": {"features_dim": 16}}),
        (DQN, {"n_envs": 2, "learning_starts": 64, "policy_kwargs": {"net_arch": [16, 16]}}),
    ],
)
def test_an_agent_learns_the_same_from_the_batched_and_the_sync_copies(agent_class, kwargs):
    """Same seed, same episodes and the same weights: the agent saw the same observations."""
    env = make_env("lab/TextPositive-v0")
    fast, fast_episodes = trained(agent_class, env, **kwargs)
    assert isinstance(fast._steps.vec.unwrapped, TextVectorEnv)
    slow, slow_episodes = trained(agent_class, sync_copies(env, kwargs["n_envs"]), **kwargs)
    assert isinstance(slow._steps.vec, gym.vector.SyncVectorEnv)
    assert fast_episodes == slow_episodes and len(fast_episodes) > 10
    network = "policy" if agent_class is PPO else "q_net"
    ours, theirs = getattr(fast, network).state_dict(), getattr(slow, network).state_dict()
    assert list(ours) == list(theirs)
    for name, weights in ours.items():
        torch.testing.assert_close(weights, theirs[name], rtol=0, atol=0, msg=name)
