"""The single environment: seeding, observations of every type, text and RGB rendering."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from conftest import make_unwrapped

import envs
from envs import GridWorld
from envs.grid import OBS_TYPES, Tile
from envs.grid.observations import CHANNELS

STOCHASTIC = [
    ("lab/IceLake8x8-v0", {}),
    ("lab/IceLake-v0", {"slip_prob": 0.2}),
    ("lab/WindyGrid-v0", {"stochastic_wind": True, "king_moves": True}),
    ("lab/GridWorld-v0", {"ascii_map": ["S..S", ".~~.", "S~.G"], "slippery": False}),  # random start, ice
]
DETERMINISTIC = [("lab/CliffWalk-v0", {}), ("lab/KeyDoor-v0", {}), ("lab/Maze-v0", {"size": 7})]


def rollout(env, seed, actions, resets_every=None):
    """(obs, reward, terminated, truncated, state) of a fixed action sequence, resetting on episode end."""
    out = []
    obs, info = env.reset(seed=seed)
    out.append((np.asarray(obs).tolist(), info["state"]))
    for t, a in enumerate(actions):
        obs, reward, terminated, truncated, info = env.step(int(a))
        out.append((np.asarray(obs).tolist(), reward, terminated, truncated, info["state"]))
        if terminated or truncated or (resets_every and (t + 1) % resets_every == 0):
            obs, info = env.reset()
            out.append((np.asarray(obs).tolist(), info["state"]))
    return out


@pytest.mark.parametrize(("env_id", "kwargs"), STOCHASTIC + DETERMINISTIC)
def test_same_seed_same_trajectory(env_id, kwargs):
    n_actions = gym.make(env_id, **kwargs).action_space.n
    actions = np.random.default_rng(0).integers(n_actions, size=300)
    a = rollout(gym.make(env_id, max_episode_steps=20, **kwargs), 7, actions, resets_every=13)
    b = rollout(gym.make(env_id, max_episode_steps=20, **kwargs), 7, actions, resets_every=13)
    assert a == b
    # reseeding a used environment restarts the same stream
    env = gym.make(env_id, max_episode_steps=20, **kwargs)
    rollout(env, 123, actions[:50])
    assert rollout(env, 7, actions, resets_every=13) == a


@pytest.mark.parametrize(("env_id", "kwargs"), STOCHASTIC)
def test_different_seeds_differ(env_id, kwargs):
    n_actions = gym.make(env_id, **kwargs).action_space.n
    actions = np.random.default_rng(1).integers(n_actions, size=200)
    runs = [rollout(gym.make(env_id, max_episode_steps=20, **kwargs), seed, actions) for seed in (0, 1, 2)]
    assert runs[0] != runs[1] and runs[1] != runs[2] and runs[0] != runs[2]


@pytest.mark.parametrize(("env_id", "kwargs"), STOCHASTIC[:3])
def test_episodes_after_one_seed_differ(env_id, kwargs):
    # reset() without a seed starts a new episode with fresh randomness, not a replay
    env = make_unwrapped(env_id, **kwargs)
    actions = np.random.default_rng(2).integers(env.action_space.n, size=40)
    env.reset(seed=5)
    first = [env.step(int(a))[4]["state"] for a in actions]
    episodes = []
    for _ in range(3):
        env.reset()
        episodes.append([env.step(int(a))[4]["state"] for a in actions])
    assert all(ep != first for ep in episodes)


def test_several_starts_uniform():
    env = GridWorld(["S..S", "....", "S..G"])
    starts = env.model.start_states.tolist()
    assert len(starts) == 3
    env.reset(seed=0)
    counts = {s: 0 for s in starts}
    n = 6000
    for _ in range(n):
        counts[env.reset()[1]["state"]] += 1
    sigma = np.sqrt((1 / 3) * (2 / 3) / n)
    for s in starts:
        assert abs(counts[s] / n - 1 / 3) <= 4 * sigma


def test_unseeded_reset_works_and_seed_restores_determinism():
    env = make_unwrapped("lab/IceLake8x8-v0")
    env.reset()
    for _ in range(5):
        env.step(1)
    env.reset(seed=3)
    a = [env.step(2)[4]["state"] for _ in range(30)]
    env2 = make_unwrapped("lab/IceLake8x8-v0")
    env2.reset(seed=3)
    assert a == [env2.step(2)[4]["state"] for _ in range(30)]


# ----- observations -----


ENVS_FOR_OBS = [
    ("lab/KeyDoor-v0", {}),
    ("lab/WindyGrid-v0", {}),
    ("lab/IceLake-v0", {}),
    ("lab/GridWorld-v0", {}),
    ("lab/Maze-v0", {"size": 7}),
]


def check_obs(env: GridWorld, obs) -> None:
    """The observation is in the space and encodes ``env.state`` exactly."""
    m = env.model
    s = env.state
    row, col, phase = int(m.state_row[s]), int(m.state_col[s]), int(m.state_phase[s])
    assert env.observation_space.contains(obs), (env.obs_type, obs)
    if env.obs_type == "index":
        assert type(obs) is int and obs == s
    elif env.obs_type == "coords":
        assert obs.dtype == np.float32
        expected = [row, col] + ([phase >= 1, phase >= 2] if m.n_phases > 1 else [])
        np.testing.assert_array_equal(obs, np.array(expected, dtype=np.float32))
    elif env.obs_type == "onehot":
        assert obs.dtype == np.float32 and obs.shape == (m.n_states,)
        assert obs.sum() == 1.0 and int(obs.argmax()) == s
    elif env.obs_type == "symbolic":
        tiles = m.layout.tiles
        assert obs.dtype == np.uint8 and obs.shape == (*tiles.shape, len(CHANNELS))
        agent = obs[..., CHANNELS.index("agent")]
        assert agent.sum() == 1 and agent[row, col] == 1
        np.testing.assert_array_equal(obs[..., CHANNELS.index("wall")], tiles == Tile.WALL)
        np.testing.assert_array_equal(obs[..., CHANNELS.index("goal")], tiles == Tile.GOAL)
        np.testing.assert_array_equal(obs[..., CHANNELS.index("pit")], tiles == Tile.PIT)
        np.testing.assert_array_equal(obs[..., CHANNELS.index("ice")], m.layout.ice)
        np.testing.assert_array_equal(
            obs[..., CHANNELS.index("wind")], np.where(tiles == Tile.WALL, 0, m.wind[None, :])
        )
        np.testing.assert_array_equal(obs[..., CHANNELS.index("key")], (tiles == Tile.KEY) & (phase == 0))
        np.testing.assert_array_equal(obs[..., CHANNELS.index("door")], (tiles == Tile.DOOR) & (phase < 2))
    else:
        assert obs.dtype == np.uint8 and obs.shape == env.observation_space.shape
        np.testing.assert_array_equal(obs, env.encoder.painter.frame(row, col, phase))


@pytest.mark.parametrize("obs_type", OBS_TYPES)
@pytest.mark.parametrize(("env_id", "kwargs"), ENVS_FOR_OBS, ids=[e for e, _ in ENVS_FOR_OBS])
def test_observations_encode_the_state(env_id, kwargs, obs_type):
    env = make_unwrapped(env_id, obs_type=obs_type, **kwargs)
    rng = np.random.default_rng(4)
    obs, info = env.reset(seed=4)
    assert info == {"state": env.state}
    check_obs(env, obs)
    phases = set()
    for _ in range(150):
        obs, _, terminated, _, info = env.step(int(rng.integers(env.action_space.n)))
        assert info["state"] == env.state
        check_obs(env, obs)
        phases.add(int(env.model.state_phase[env.state]))
        if terminated:
            obs, _ = env.reset()
            check_obs(env, obs)
    if env_id == "lab/KeyDoor-v0":
        # the scripted route visits every phase
        env.reset(seed=0)
        for a in [2, 2, 0, 1, 1, 1, 1, 1, 1, 1]:
            obs = env.step(a)[0]
            check_obs(env, obs)
            phases.add(int(env.model.state_phase[env.state]))
        assert phases == {0, 1, 2}


@pytest.mark.parametrize("obs_type", OBS_TYPES)
def test_every_state_encodes_in_space(obs_type):
    env = make_unwrapped("lab/KeyDoor-v0", obs_type=obs_type)
    batch = env.encoder.encode(np.arange(env.model.n_states))
    assert len(batch) == env.model.n_states
    for s in range(env.model.n_states):
        env._state = s
        check_obs(env, env.encoder.encode_one(s))
        np.testing.assert_array_equal(batch[s], env.encoder.encode_one(s))
    if obs_type != "index":
        # distinct states, distinct observations
        flat = batch.reshape(len(batch), -1)
        assert len(np.unique(flat, axis=0)) == env.model.n_states


def test_space_shapes_and_bounds():
    env = make_unwrapped("lab/KeyDoor-v0", obs_type="coords")
    np.testing.assert_array_equal(env.observation_space.high, [6, 10, 1, 1])
    np.testing.assert_array_equal(env.observation_space.low, [0, 0, 0, 0])
    env = make_unwrapped("lab/WindyGrid-v0", obs_type="coords")
    np.testing.assert_array_equal(env.observation_space.high, [6, 9])
    env = make_unwrapped("lab/WindyGrid-v0", obs_type="symbolic")
    assert env.observation_space.shape == (7, 10, 8)
    assert env.observation_space.high[..., CHANNELS.index("wind")].max() == 2
    env = make_unwrapped("lab/CliffWalk-v0", obs_type="pixels", obs_tile_size=5)
    assert env.observation_space.shape == (20, 60, 3)
    assert make_unwrapped("lab/CliffWalk-v0", obs_type="onehot").observation_space.shape == (48,)
    assert make_unwrapped("lab/CliffWalk-v0").observation_space == gym.spaces.Discrete(48)


@pytest.mark.parametrize("obs_type", ["coords", "onehot", "symbolic", "pixels"])
def test_returned_observations_not_shared(obs_type):
    env = make_unwrapped("lab/KeyDoor-v0", obs_type=obs_type)
    first, _ = env.reset(seed=0)
    keep = first.copy()
    second = env.step(3)[0]  # left: moves, the state changes
    third = env.step(1)[0]  # right: back to the start cell
    assert not np.shares_memory(first, second) and not np.shares_memory(first, third)
    np.testing.assert_array_equal(third, keep)
    # scribbling over a returned observation does not leak into later ones (no cached views)
    third[...] = 1
    first[...] = 0
    env.reset(seed=0)
    again, _ = env.reset(seed=0)
    np.testing.assert_array_equal(again, keep)
    assert not np.shares_memory(again, third)


def test_info_and_step_types():
    env = make_unwrapped("lab/CliffWalk-v0")
    obs, info = env.reset(seed=0)
    assert (obs, info) == (36, {"state": 36})
    obs, reward, terminated, truncated, info = env.step(0)
    assert (obs, reward, terminated, truncated, info) == (24, -1.0, False, False, {"state": 24})
    assert type(reward) is float and type(terminated) is bool and type(truncated) is bool


# ----- rendering without a window -----


def test_ansi_render():
    env = make_unwrapped("lab/KeyDoor-v0", render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    lines = text.splitlines()
    assert text.count("@") == 1
    assert lines[2][2] == "@"  # start cell (2, 2)
    assert lines[4][2] == "K" and lines[3][5] == "D"
    assert "step 0" in lines[-1] and "key on floor" in lines[-1]
    for a in [2, 2]:
        env.step(a)
    text = env.render()
    assert "K" not in text and "@" in text.splitlines()[4] and "key carried" in text
    for a in [0, 1, 1, 1]:
        env.step(a)
    text = env.render()
    assert "/" not in text and text.splitlines()[3][5] == "@"  # the agent stands in the open doorway
    env.step(1)
    text = env.render()
    assert text.splitlines()[3][5] == "/" and "door open" in text and "action right" in text


def test_ansi_shows_ice():
    env = make_unwrapped("lab/IceLake-v0", render_mode="ansi")
    env.reset(seed=0)
    assert env.render().splitlines()[:4] == ["@~~~", "~H~H", "~~~H", "H~~G"]


@pytest.mark.parametrize(("env_id", "shape"), [("lab/IceLake-v0", (4, 4)), ("lab/CliffWalk-v0", (4, 12))])
def test_rgb_array_render(env_id, shape):
    env = make_unwrapped(env_id, render_mode="rgb_array", render_tile_size=6)
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (shape[0] * 6, shape[1] * 6, 3)
    m = env.model
    s = env.state
    np.testing.assert_array_equal(frame, env.painter().frame(m.state_row[s], m.state_col[s], 0))
    env.step(0)
    assert env.render().shape == frame.shape


def test_default_render_tile_size():
    # about 600 pixels on the long side, never below 12 pixels a cell
    assert make_unwrapped("lab/CliffWalk-v0", render_mode="rgb_array").render_tile_size == 50
    assert make_unwrapped("lab/FourRooms-v0", render_mode="rgb_array").render_tile_size == 46
    assert make_unwrapped("lab/Maze-v0", size=61, render_mode="rgb_array").render_tile_size == 12
    small = make_unwrapped("lab/IceLake-v0", render_mode="rgb_array").render_tile_size
    assert 50 <= small <= 150  # big cells for a small map, capped
    env = make_unwrapped("lab/IceLake-v0", render_mode="rgb_array", render_tile_size=9)
    env.reset(seed=0)
    assert env.render().shape == (36, 36, 3)


@pytest.mark.parametrize(
    ("env_id", "kwargs", "message"),
    [
        ("lab/WindyGrid-v0", {"king_moves": "False"}, "king_moves must be true or false; got 'False'"),
        ("lab/WindyGrid-v0", {"stochastic_wind": "no"}, "stochastic_wind must be true or false"),
        ("lab/CliffWalk-v0", {"slippery": "False"}, "slippery must be true or false"),
        ("lab/IceLake-v0", {"pit_terminal": 0}, "pit_terminal must be true or false; got 0"),
        ("lab/IceLake-v0", {"slip_prob": "0.5"}, "slip_prob must be a number; got '0.5'"),
        ("lab/CliffWalk-v0", {"step_reward": "x"}, "step_reward must be a number; got 'x'"),
        ("lab/CliffWalk-v0", {"goal_reward": float("nan")}, "goal_reward must be a finite number"),
        ("lab/CliffWalk-v0", {"render_tile_size": 0}, "must be a whole number >= 4; got 0"),
        ("lab/CliffWalk-v0", {"render_tile_size": -5}, "must be a whole number >= 4; got -5"),
        ("lab/TextDyck-v0", {"action_mask": "False"}, "action_mask must be true or false"),
    ],
)
def test_arguments_given_as_text_or_out_of_range_are_refused_when_the_env_is_made(env_id, kwargs, message):
    with pytest.raises(envs.EnvError, match=message):
        gym.make(env_id, **kwargs)


def test_render_without_mode_warns_and_returns_none():
    env = make_unwrapped("lab/IceLake-v0")
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


def test_named_actions_match_the_moves_and_their_names():
    from envs.grid.model import ACTION_NAMES, MOVES

    named = [envs.UP, envs.RIGHT, envs.DOWN, envs.LEFT]
    named += [envs.UP_RIGHT, envs.DOWN_RIGHT, envs.DOWN_LEFT, envs.UP_LEFT]
    assert named == list(range(8))
    assert [ACTION_NAMES[a] for a in named] == [
        "up", "right", "down", "left", "up-right", "down-right", "down-left", "up-left"
    ]  # fmt: skip
    assert [MOVES[a] for a in named] == [(-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1)]


@pytest.mark.parametrize("pit_terminal", [True, False])
def test_pits_restart_in_the_same_key_phase_and_ends_are_absorbing_with_reward_0(pit_terminal):
    """The model's documented rules on a map with a key, a door and a pit: a non-terminal pit sends
    the agent back to the start keeping the key it carries; goal (and terminal pit) states keep the
    agent there at reward 0 whatever it does."""
    from envs.grid.model import DOWN, RIGHT

    env = gym.make(
        "lab/GridWorld-v0", ascii_map=["SK.DG", "..H.."], pit_terminal=pit_terminal, pit_reward=-5.0,
        step_reward=-1.0,
    )  # fmt: skip
    model = env.unwrapped.model
    tm = model.transition_model()
    above_pit = model.state_of(1, 1, phase=1)  # key carried, next to the pit
    pit = model.state_of(1, 2, phase=1)
    landing = pit if pit_terminal else model.state_of(0, 0, phase=1)  # the start, key still carried
    assert tm.P[above_pit, RIGHT, landing] == 1.0 and tm.R[above_pit, RIGHT] == -5.0
    assert tm.P[model.state_of(0, 1, phase=1), DOWN, above_pit] == 1.0  # plain moves pay step_reward
    assert tm.R[model.state_of(0, 1, phase=1), DOWN] == -1.0
    assert bool(tm.terminal[pit]) is pit_terminal
    ends = [model.state_of(0, 4, phase=2)] + ([pit] if pit_terminal else [])
    for s in ends:
        np.testing.assert_array_equal(tm.P[s, :, s], 1.0)
        np.testing.assert_array_equal(tm.R[s], 0.0)
    np.testing.assert_array_equal(np.flatnonzero(tm.terminal), sorted(
        [model.state_of(0, 4, phase) for phase in range(3)]
        + ([model.state_of(1, 2, phase) for phase in range(3)] if pit_terminal else [])
    ))  # fmt: skip


def test_ansi_shows_the_key_carried_the_door_opened_and_the_running_return():
    env = GridWorld(["SK.D.G"], render_mode="ansi", step_reward=-0.5)
    env.reset(seed=0)
    frames = [env.render()]
    for _ in range(4):
        env.step(envs.RIGHT)
        frames.append(env.render())
    assert frames == [
        "@K.D.G\nstep 0   action -   return 0   key on floor\n",
        "S@.D.G\nstep 1   action right   return -0.5   key carried\n",
        "S.@D.G\nstep 2   action right   return -1   key carried\n",  # the key is gone, the door shut
        "S..@.G\nstep 3   action right   return -1.5   door open\n",
        "S../@G\nstep 4   action right   return -2   door open\n",  # the open door drawn as /
    ]


def test_at_goal_only_on_a_goal_not_on_a_pit_or_the_start():
    env = GridWorld(["H.S.G"])
    env.reset(seed=0)
    assert not env.at_goal()
    env.step(envs.LEFT)
    _, _, terminated, _, _ = env.step(envs.LEFT)
    assert terminated and not env.at_goal()  # the episode ended in the pit: no success
    env.reset(seed=0)
    env.step(envs.RIGHT)
    _, _, terminated, _, _ = env.step(envs.RIGHT)
    assert terminated and env.at_goal()


def test_symbolic_wind_plane_is_the_column_strength_on_walkable_cells_and_zero_on_walls():
    env = GridWorld(["#####", "#S.G#", "#####"], obs_type="symbolic", wind=[1, 2, 0, 3, 1])
    obs, _ = env.reset(seed=0)
    wind = obs[..., CHANNELS.index("wind")]
    np.testing.assert_array_equal(wind, [[0, 0, 0, 0, 0], [0, 2, 0, 3, 0], [0, 0, 0, 0, 0]])
    assert env.observation_space.high[0, 0, CHANNELS.index("wind")] == 3
