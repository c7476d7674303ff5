"""TextVectorEnv reproduces N single text environments in a SyncVectorEnv exactly, step for step."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import SyncVectorEnv

from envs import EnvError, InvalidActionError, TextVectorEnv

CASES = [
    ("lab/TextPositive-v0", {"reward": {"task": 1.0, "grammatical": 0.5, "viability": 0.25}}, True),
    ("lab/TextPositive-v0", {}, False),
    ("lab/TextArithmetic-v0", {"max_operand": 9}, True),
    ("lab/TextReverse-v0", {"reward": {"task": 1.0, "length": 0.5}, "target_length": 2}, False),
    ("lab/TextDyck-v0", {"action_mask": False, "reward": {"grammatical": 1.0, "viability": 1.0}}, False),
]


def assert_same(a, b, what):
    for key in ("tokens", "length"):
        np.testing.assert_array_equal(a[0][key], b[0][key], err_msg=f"{what} obs {key}")
        assert a[0][key].dtype == b[0][key].dtype
    for i, name in enumerate(("reward", "terminated", "truncated"), start=1):
        assert a[i].dtype == b[i].dtype, (what, name)
        np.testing.assert_array_equal(a[i], b[i], err_msg=f"{what} {name}")
    assert set(a[-1]) == set(b[-1]), what
    for key in a[-1]:
        np.testing.assert_array_equal(a[-1][key], b[-1][key], err_msg=f"{what} info {key}")


@pytest.mark.parametrize(
    ("env_id", "kwargs", "masked"), CASES, ids=[f"{c[0][4:]}-{i}" for i, c in enumerate(CASES)]
)
def test_vector_equals_sync(env_id, kwargs, masked):
    n = 6
    ours = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kwargs)
    ref = SyncVectorEnv([lambda: gym.make(env_id, **kwargs)] * n)
    assert ours.observation_space == ref.observation_space
    assert ours.action_space == ref.action_space
    rng = np.random.default_rng(0)
    a, b = ours.reset(seed=7), ref.reset(seed=7)
    for key in ("tokens", "length"):
        np.testing.assert_array_equal(a[0][key], b[0][key])
    ends = 0
    for t in range(250):
        if masked:
            masks = ours.action_masks()
            actions = np.array([rng.choice(np.flatnonzero(m)) for m in masks])
        else:
            actions = rng.integers(ours.single_action_space.n, size=n)
        x, y = ours.step(actions), ref.step(actions)
        assert_same(x, y, f"step {t}")
        ends += int((x[2] | x[3]).sum())
        if t == 120:
            a, b = ours.reset(), ref.reset()  # unseeded: every copy's stream continues alike
            np.testing.assert_array_equal(a[0]["tokens"], b[0]["tokens"])
    assert ends > 2 * n
    ours.close()
    ref.close()


def test_thousand_copies_end_with_the_end_token_under_masks():
    env = gym.make_vec("lab/TextPositive-v0", num_envs=1024, vectorization_mode="vector_entry_point")
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(30):
        masks = env.action_masks()
        # a random allowed token per copy, vectorised: the first allowed index at or after a random point
        scores = rng.random(masks.shape) + masks
        _, reward, terminated, truncated, info = env.step(scores.argmax(axis=1))
        assert not truncated.any()
        if terminated.any():
            assert info["grammatical"][terminated].all()
            np.testing.assert_array_equal(reward[terminated], info["success"][terminated].astype(float))
        ended += int(terminated.sum())
    assert ended > 1024


def test_bad_vector_input():
    with pytest.raises(EnvError, match="num_envs must be a positive integer"):
        TextVectorEnv.make(num_envs=0)
    with pytest.raises(EnvError, match="does not render"):
        TextVectorEnv.make(num_envs=2, render_mode="ansi")
    env = TextVectorEnv.make(num_envs=2, language="dyck")
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="action 3 of copy 1 is outside"):
        env.step(np.array([1, 3]))
    with pytest.raises(InvalidActionError, match="2 integer actions"):
        env.step(np.array([1]))


def test_an_end_token_at_the_step_limit_is_also_truncated_as_under_time_limit():
    kwargs = {"num_envs": 1, "max_episode_steps": 5}
    ours = gym.make_vec("lab/TextDyck-v0", vectorization_mode="vector_entry_point", **kwargs)
    ref = gym.make_vec("lab/TextDyck-v0", vectorization_mode="sync", **kwargs)
    ours.reset(seed=0)
    ref.reset(seed=0)
    for token in (1, 2, 1, 2, 0):  # ( ) ( ) <eos>: the end token is the fifth step, the limit
        x, y = ours.step(np.array([token])), ref.step(np.array([token]))
        assert_same(x, y, f"token {token}")
    assert x[2][0] and x[3][0]  # terminated, and truncated by the limit: gymnasium's TimeLimit says both
