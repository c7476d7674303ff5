"""GridVectorEnv reproduces N single environments in a SyncVectorEnv exactly, step for step."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from conftest import ALL_IDS
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import envs
from envs.grid.presets import IceLake

CASES = [
    ("lab/IceLake8x8-v0", {}, "index"),
    ("lab/IceLake8x8-v0", {}, "onehot"),
    ("lab/WindyGrid-v0", {"stochastic_wind": True, "king_moves": True}, "coords"),
    ("lab/WindyGrid-v0", {"stochastic_wind": True}, "index"),
    ("lab/CliffWalk-v0", {}, "index"),
    ("lab/CliffWalk-v0", {}, "symbolic"),
    ("lab/KeyDoor-v0", {}, "coords"),
    ("lab/KeyDoor-v0", {}, "symbolic"),
    ("lab/Maze-v0", {"size": 7, "maze_seed": 2}, "index"),
    ("lab/GridWorld-v0", {"ascii_map": ["S.~S", "~H~.", "S~.G"], "pit_terminal": False}, "index"),
    ("lab/IceLake-v0", {"obs_tile_size": 4}, "pixels"),
]


def make_pair(env_id, kwargs, obs_type, n, max_steps):
    kw = dict(kwargs, obs_type=obs_type)
    ours = gym.make_vec(
        env_id, num_envs=n, vectorization_mode="vector_entry_point", max_episode_steps=max_steps, **kw
    )
    ref = SyncVectorEnv([lambda: gym.make(env_id, max_episode_steps=max_steps, **kw)] * n)
    return ours, ref


def assert_same(a, b, what=""):
    for name, x, y in zip(("obs", "reward", "terminated", "truncated", "info"), a, b, strict=True):
        if name == "info":
            np.testing.assert_array_equal(x["state"], y["state"], err_msg=f"{what} info['state']")
            np.testing.assert_array_equal(x["_state"], y["_state"], err_msg=f"{what} info['_state']")
        else:
            assert np.asarray(x).dtype == np.asarray(y).dtype, (what, name)
            np.testing.assert_array_equal(x, y, err_msg=f"{what} {name}")


def assert_same_reset(a, b, what=""):
    np.testing.assert_array_equal(a[0], b[0], err_msg=f"{what} obs")
    assert np.asarray(a[0]).dtype == np.asarray(b[0]).dtype
    np.testing.assert_array_equal(a[1]["state"], b[1]["state"], err_msg=f"{what} info['state']")


@pytest.mark.parametrize(("env_id", "kwargs", "obs_type"), CASES, ids=[f"{c[0][4:]}-{c[2]}" for c in CASES])
def test_vector_equals_sync(env_id, kwargs, obs_type):
    n, steps = 6, 300 if obs_type != "pixels" else 120
    ours, ref = make_pair(env_id, kwargs, obs_type, n, max_steps=15)
    assert ours.single_observation_space == ref.single_observation_space
    assert ours.observation_space == ref.observation_space
    assert ours.action_space == ref.action_space
    rng = np.random.default_rng(0)
    assert_same_reset(ours.reset(seed=42), ref.reset(seed=42), "reset")
    ends = 0
    for t in range(steps):
        actions = rng.integers(ours.single_action_space.n, size=n)
        a, b = ours.step(actions), ref.step(actions)
        assert_same(a, b, f"step {t}")
        ends += int((a[2] | a[3]).sum())
        if t == steps // 2:
            # an unseeded reset continues every copy's stream identically
            assert_same_reset(ours.reset(), ref.reset(), "mid reset")
    assert ends > n  # truncation and autoreset happened, repeatedly
    # seeding again replays the same start
    assert_same_reset(ours.reset(seed=42), ref.reset(seed=42), "reseed")
    ours.close()
    ref.close()


def test_seed_list_equals_seed_offsets():
    a = gym.make_vec(
        "lab/IceLake8x8-v0", num_envs=4, vectorization_mode="vector_entry_point", max_episode_steps=10
    )
    b = gym.make_vec(
        "lab/IceLake8x8-v0", num_envs=4, vectorization_mode="vector_entry_point", max_episode_steps=10
    )
    ref = SyncVectorEnv([lambda: gym.make("lab/IceLake8x8-v0", max_episode_steps=10)] * 4)
    seeds = [9, 3, 1000, 0]
    assert_same_reset(a.reset(seed=seeds), ref.reset(seed=seeds))
    b.reset(seed=np.array([9, 3, 1000, 0], dtype=np.uint32))
    rng = np.random.default_rng(1)
    for t in range(60):
        actions = rng.integers(4, size=4)
        x, y, z = a.step(actions), ref.step(actions), b.step(actions)
        assert_same(x, y, f"step {t}")
        assert_same(x, z, f"step {t}")
    # reset(seed=s) is reset(seed=[s, s+1, ...])
    c = gym.make_vec("lab/IceLake8x8-v0", num_envs=4, vectorization_mode="vector_entry_point")
    d = gym.make_vec("lab/IceLake8x8-v0", num_envs=4, vectorization_mode="vector_entry_point")
    c.reset(seed=5)
    d.reset(seed=[5, 6, 7, 8])
    for _ in range(20):
        actions = rng.integers(4, size=4)
        assert_same(c.step(actions), d.step(actions))


def test_vector_reset_clears_pending_autoreset():
    ours, ref = make_pair("lab/CliffWalk-v0", {}, "index", 3, max_steps=2)
    assert_same_reset(ours.reset(seed=0), ref.reset(seed=0))
    for _ in range(2):
        assert_same(ours.step(np.array([0, 1, 2])), ref.step(np.array([0, 1, 2])))
    # every copy is truncated now; an explicit reset replaces the pending autoreset
    assert_same_reset(ours.reset(), ref.reset())
    a, b = ours.step(np.array([0, 0, 0])), ref.step(np.array([0, 0, 0]))
    assert_same(a, b)
    np.testing.assert_array_equal(a[1], [-1.0, -1.0, -1.0])  # a real step, not an autoreset


def test_many_copies_equal_single_envs():
    n, steps, limit = 4096, 10, 4
    venv = gym.make_vec(
        "lab/IceLake8x8-v0",
        num_envs=n,
        vectorization_mode="vector_entry_point",
        max_episode_steps=limit,
        obs_type="coords",
    )
    rng = np.random.default_rng(3)
    actions = rng.integers(4, size=(steps, n))
    obs0, info0 = venv.reset(seed=1000)
    results = [venv.step(actions[t]) for t in range(steps)]
    # one single environment replays each copy in turn, with next-step autoreset done by hand
    env = gym.make("lab/IceLake8x8-v0", max_episode_steps=limit, obs_type="coords")
    for i in range(n):
        obs, info = env.reset(seed=1000 + i)
        np.testing.assert_array_equal(obs0[i], obs)
        assert info0["state"][i] == info["state"]
        done = False
        for t in range(steps):
            if done:
                obs, info = env.reset()
                reward, terminated, truncated = 0.0, False, False
            else:
                obs, reward, terminated, truncated, info = env.step(int(actions[t, i]))
            done = terminated or truncated
            v_obs, v_rew, v_term, v_trunc, v_info = results[t]
            assert (v_rew[i], v_term[i], v_trunc[i], v_info["state"][i]) == (
                reward,
                terminated,
                truncated,
                info["state"],
            ), (i, t)
            np.testing.assert_array_equal(v_obs[i], obs)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_make_vec_gives_grid_vector_env(env_id):
    venv = gym.make_vec(env_id, num_envs=4, vectorization_mode="vector_entry_point")
    assert isinstance(venv, envs.GridVectorEnv)
    assert isinstance(venv.unwrapped, envs.GridVectorEnv)
    assert venv.metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    assert venv.num_envs == 4
    # the registered step limit carries over
    entry = next(e for e in envs.ENTRIES if e.id == env_id)
    assert venv.max_episode_steps == entry.max_episode_steps
    # the default vectorization mode picks the vector entry point too
    assert isinstance(gym.make_vec(env_id, num_envs=2), envs.GridVectorEnv)


def test_registered_limit_truncates_like_time_limit():
    limit = 100  # lab/IceLake-v0
    venv = gym.make_vec("lab/IceLake-v0", num_envs=2, vectorization_mode="vector_entry_point", slippery=False)
    venv.reset(seed=0)
    for t in range(1, limit + 1):
        _, _, terminated, truncated, _ = venv.step(np.array([0, 3]))  # bump the corner forever
        assert not terminated.any()
        assert truncated.all() == (t == limit)
    env = gym.make("lab/IceLake-v0", slippery=False)
    env.reset(seed=0)
    assert [env.step(0)[3] for _ in range(limit)][-2:] == [False, True]


def test_no_limit_never_truncates():
    venv = envs.GridVectorEnv(IceLake(slippery=False), num_envs=3)
    venv.reset(seed=0)
    for _ in range(300):
        _, _, _, truncated, _ = venv.step(np.zeros(3, dtype=np.int64))
        assert not truncated.any()


def test_vector_render_and_states():
    venv = gym.make_vec(
        "lab/KeyDoor-v0",
        num_envs=3,
        vectorization_mode="vector_entry_point",
        render_mode="rgb_array",
        render_tile_size=5,
    )
    venv.reset(seed=0)
    venv.step(np.array([2, 3, 1]))
    frames = venv.render()
    inner = venv.unwrapped
    m = inner.model
    states = inner.states
    assert isinstance(frames, tuple) and len(frames) == 3
    for frame, s in zip(frames, states, strict=True):
        assert frame.shape == (7 * 5, 11 * 5, 3) and frame.dtype == np.uint8
        np.testing.assert_array_equal(
            frame, inner.env.painter().frame(m.state_row[s], m.state_col[s], m.state_phase[s])
        )
    states[:] = -1  # a copy
    assert (inner.states >= 0).all()
    assert (
        gym.make_vec("lab/KeyDoor-v0", num_envs=2, vectorization_mode="vector_entry_point").render() is None
    )


def test_vector_returns_fresh_arrays():
    venv = gym.make_vec(
        "lab/KeyDoor-v0", num_envs=2, vectorization_mode="vector_entry_point", obs_type="symbolic"
    )
    obs, info = venv.reset(seed=0)
    keep = obs.copy()
    info["state"][:] = -1
    nxt = venv.step(np.array([3, 3]))
    obs[...] = 7
    nxt[1][:] = 123.0
    nxt[4]["state"][:] = -5
    back = venv.step(np.array([1, 1]))
    np.testing.assert_array_equal(back[0], keep)
    np.testing.assert_array_equal(back[1], [-0.01, -0.01])
    assert (venv.unwrapped.states >= 0).all()


def test_direct_construction_and_entry_point_kwargs():
    venv = envs.GridVectorEnv(envs.grid.CliffWalk(obs_type="coords"), num_envs=5, max_episode_steps=7)
    obs, info = venv.reset(seed=0)
    np.testing.assert_array_equal(obs, np.tile([3.0, 0.0], (5, 1)).astype(np.float32))
    np.testing.assert_array_equal(info["state"], [36] * 5)
    make = envs.GridVectorEnv.entry_point(envs.grid.WindyGrid)
    v = make(num_envs=2, max_episode_steps=3, king_moves=True)
    assert v.single_action_space.n == 8 and v.max_episode_steps == 3


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int8, np.uint8, np.uint32, np.uint64])
def test_every_integer_action_dtype(dtype):
    ours = gym.make_vec("lab/IceLake8x8-v0", num_envs=3, vectorization_mode="vector_entry_point")
    ref = gym.make_vec("lab/IceLake8x8-v0", num_envs=3, vectorization_mode="vector_entry_point")
    ours.reset(seed=4)
    ref.reset(seed=4)
    rng = np.random.default_rng(5)
    for _ in range(30):
        actions = rng.integers(4, size=3)
        assert_same(ours.step(actions.astype(dtype)), ref.step(actions))


@pytest.mark.parametrize("env_id", ["lab/CliffWalk-v0", "lab/TextDyck-v0"])
def test_a_batched_env_steps_only_after_a_reset(env_id):
    from gymnasium.error import ResetNeeded

    venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
    with pytest.raises(ResetNeeded, match=r"call reset\(\) before step\(\)"):
        venv.step(np.array([1, 1]))
    venv.reset(seed=0)
    venv.step(np.array([1, 1]))


@pytest.mark.parametrize("seed", [2**63, 2**64 - 1, 2**64 + 3])
def test_seeds_past_63_bits_give_what_single_envs_give(seed):
    ours = gym.make_vec("lab/IceLake-v0", num_envs=3, vectorization_mode="vector_entry_point")
    ref = SyncVectorEnv([lambda: gym.make("lab/IceLake-v0")] * 3)
    assert_same_reset(ours.reset(seed=seed), ref.reset(seed=seed))
    rng = np.random.default_rng(1)
    for t in range(40):
        actions = rng.integers(4, size=3)
        assert_same(ours.step(actions), ref.step(actions), f"step {t}")
    with pytest.raises(envs.EnvError, match=r"a list of 3 ints >= 0"):
        ours.reset(seed=[1, -1, 2])


def test_grid_envs_and_their_specs_pickle():
    import pickle

    env = gym.make("lab/Maze-v0", obs_type="onehot")
    copy = pickle.loads(pickle.dumps(env))
    assert copy.spec.id == env.spec.id and copy.spec.kwargs == env.spec.kwargs
    np.testing.assert_array_equal(copy.reset(seed=3)[0], env.reset(seed=3)[0])
    make = pickle.loads(pickle.dumps(env.spec.vector_entry_point))
    assert make(num_envs=2).num_envs == 2


@pytest.mark.parametrize("env_id", ["lab/IceLake-v0", "lab/TextDyck-v0"])
def test_reset_mask_resets_only_those_copies_as_sync_vector_env_does(env_id):
    n, rng = 4, np.random.default_rng(2)
    ours = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", max_episode_steps=9)
    ref = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync", max_episode_steps=9)
    with pytest.raises(envs.EnvError, match="the first reset"):
        ours.reset(options={"reset_mask": np.ones(n, dtype=bool)})
    ours.reset(seed=5)
    ref.reset(seed=5)
    for t in range(120):
        if t % 7 == 6:  # some copies start over: with a seed, without one, or with one seed each
            mask = rng.random(n) < 0.5
            mask[t % n] = True
            seed = (None, 11, [3, 1, 4, 1])[(t // 7) % 3]
            a, b = (
                ours.reset(seed=seed, options={"reset_mask": mask}),
                ref.reset(seed=seed, options={"reset_mask": mask.copy()}),
            )
            obs_a, obs_b = (a[0]["tokens"], b[0]["tokens"]) if isinstance(a[0], dict) else (a[0], b[0])
            np.testing.assert_array_equal(obs_a, obs_b, err_msg=f"reset at {t}")
            for key in b[1]:
                np.testing.assert_array_equal(a[1][key], b[1][key], err_msg=f"reset at {t}: info {key}")
        actions = rng.integers(ours.single_action_space.n, size=n)
        x, y = ours.step(actions), ref.step(actions)
        for i in (1, 2, 3):
            np.testing.assert_array_equal(x[i], y[i], err_msg=f"step {t}")
        obs_x, obs_y = (x[0]["tokens"], y[0]["tokens"]) if isinstance(x[0], dict) else (x[0], y[0])
        np.testing.assert_array_equal(obs_x, obs_y, err_msg=f"step {t}")
    with pytest.raises(envs.EnvError, match="reset_mask resets no copy"):
        ours.reset(options={"reset_mask": np.zeros(n, dtype=bool)})


def test_vector_render_draws_each_copys_key_and_door_phase_as_a_single_env_does():
    from envs.grid.vector import GridVectorEnv

    single = envs.GridWorld(["SKD.G"], render_mode="rgb_array")
    vector = GridVectorEnv(envs.GridWorld(["SKD.G"], render_mode="rgb_array"), num_envs=2)
    single.reset(seed=0)
    vector.reset(seed=0)
    frames = [single.render()]
    np.testing.assert_array_equal(vector.render()[0], frames[0])
    for _ in range(2):  # the key picked up, then the door opened
        single.step(envs.RIGHT)
        vector.step(np.array([envs.RIGHT, envs.LEFT]))
        frames.append(single.render())
        rendered = vector.render()
        np.testing.assert_array_equal(rendered[0], frames[-1])
        np.testing.assert_array_equal(rendered[1], frames[0])  # the other copy bumped the edge: unchanged
    assert not np.array_equal(frames[1], frames[2])  # an open door does not look like a shut one
