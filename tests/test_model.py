"""The compiled transition model: a proper MDP everywhere, and exactly the hand-computed dynamics."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_unwrapped
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from envs import GridWorld, MapError
from envs.grid.presets import CliffWalk, IceLake, KeyDoor, WindyGrid

UP, RIGHT, DOWN, LEFT, UP_RIGHT, DOWN_RIGHT, DOWN_LEFT, UP_LEFT = range(8)


def outcomes(model, s: int, a: int) -> dict[tuple[int, float], float]:
    """``{(next state, reward): probability}`` straight from the outcome tables."""
    i = s * model.n_actions + a
    out: dict[tuple[int, float], float] = {}
    for k in range(int(model.n_outcomes[i])):
        key = (int(model.next_state[i, k]), float(model.reward[i, k]))
        assert key not in out, "outcomes with the same next state and reward must be merged"
        out[key] = float(model.prob[i, k])
    return out


def dist(model, s: int, a: int) -> dict[int, float]:
    """``{next state: probability}`` of the dense model, non-zero entries only."""
    row = model.transition_model().P[s, a]
    return {int(j): float(row[j]) for j in np.flatnonzero(row)}


def assert_proper_mdp(env: GridWorld) -> None:
    model = env.model
    tm = env.transition_model()
    n, a = model.n_states, model.n_actions
    assert tm.P.shape == (n, a, n) and tm.R.shape == (n, a)
    assert tm.terminal.shape == (n,) and tm.initial.shape == (n,)
    assert (tm.P >= 0).all()
    np.testing.assert_allclose(tm.P.sum(axis=2), 1.0, rtol=0, atol=1e-12)
    assert abs(tm.initial.sum() - 1.0) <= 1e-12 and (tm.initial >= 0).all()
    assert set(np.flatnonzero(tm.initial)) == set(model.start_states.tolist())
    assert not tm.terminal[model.start_states].any()
    for s in np.flatnonzero(tm.terminal):
        np.testing.assert_array_equal(tm.P[s, :, s], 1.0)
        np.testing.assert_array_equal(tm.R[s], 0.0)
    # The outcome tables: probabilities positive, cdf their running sum ending exactly at 1.0,
    # padding 2.0 (never sampled), and R the probability-weighted reward.
    for i in range(n * a):
        k = int(model.n_outcomes[i])
        assert (model.prob[i, :k] > 0).all() and (model.prob[i, k:] == 0).all()
        assert model.cdf[i, k - 1] == 1.0 and (model.cdf[i, k:] == 2.0).all()
        np.testing.assert_allclose(model.cdf[i, :k], np.cumsum(model.prob[i, :k]), rtol=0, atol=1e-12)
        assert (np.diff(model.cdf[i]) >= 0).all()
    np.testing.assert_allclose(
        tm.R, (model.prob * model.reward).sum(axis=1).reshape(n, a), rtol=0, atol=1e-12
    )
    # The model hands out copies: editing them does not change the environment.
    tm.P[:] = 0
    tm.terminal[:] = ~tm.terminal
    assert env.transition_model().P.sum() == pytest.approx(n * a)
    np.testing.assert_array_equal(env.transition_model().terminal, model.terminal)


def test_every_variant_is_a_proper_mdp(variant):
    env_id, kwargs = variant
    assert_proper_mdp(make_unwrapped(env_id, **kwargs))


def test_state_numbering_row_major_over_walkable_cells():
    env = KeyDoor()
    m = env.model
    cells = [(r, c) for r, c in zip(*np.nonzero(m.layout.tiles != 1), strict=True)]
    assert m.n_cells == len(cells) == 41 and m.n_states == 123 and m.n_phases == 3
    for phase in range(3):
        for i, (r, c) in enumerate(cells):
            s = m.state_of(r, c, phase)
            assert s == phase * 41 + i
            assert (m.state_row[s], m.state_col[s], m.state_phase[s]) == (r, c, phase)
    with pytest.raises(MapError):
        m.state_of(0, 0)  # a wall
    with pytest.raises(MapError):
        m.state_of(2, 2, 3)  # no such phase


def test_preset_sizes():
    assert CliffWalk().model.n_states == 48
    assert WindyGrid().model.n_states == 70
    assert IceLake().model.n_states == 16
    assert IceLake(map_name="8x8").model.n_states == 64
    assert make_unwrapped("lab/FourRooms-v0").model.n_states == 104
    assert WindyGrid().model.n_actions == 4
    assert WindyGrid(king_moves=True).model.n_actions == 8
    assert WindyGrid(king_moves=True).action_space.n == 8


# ----- hand-computed transitions -----


def test_icelake_slip_from_corner():
    env = IceLake()
    third = 1.0 / 3.0
    got = dist(env.model, 0, RIGHT)
    assert set(got) == {0, 1, 4}
    for s2 in (0, 1, 4):
        assert got[s2] == pytest.approx(third, abs=1e-15)
    # down from 0: intended 4, slips right to 1 and left into the border (stay at 0)
    assert set(dist(env.model, 0, DOWN)) == {0, 1, 4}
    # up from 0: intended stays, slips to 1 (right); left slip stays too -> 2/3 on 0
    got = dist(env.model, 0, UP)
    assert got == pytest.approx({0: 2 * third, 1: third}, abs=1e-15)
    # from state 14 (row 3, col 2) right reaches the goal 15 with prob 1/3, reward 1
    out = outcomes(env.model, 14, RIGHT)
    assert out == pytest.approx({(15, 1.0): third, (10, 0.0): third, (14, 0.0): third}, abs=1e-15)
    # holes 5, 7, 11, 12 and the goal 15 are the terminal states
    assert np.flatnonzero(env.model.terminal).tolist() == [5, 7, 11, 12, 15]


def test_slip_prob_splits_between_sides():
    env = GridWorld(["S~.", "..G", "..."], slip_prob=0.5)
    m = env.model
    s = m.state_of(0, 1)
    assert dist(m, s, DOWN) == pytest.approx(
        {m.state_of(1, 1): 0.5, m.state_of(0, 0): 0.25, m.state_of(0, 2): 0.25}
    )
    # only the '~' cell slips
    assert dist(m, m.state_of(0, 0), DOWN) == {m.state_of(1, 0): 1.0}
    # slip_prob=1 never moves as intended; slip_prob=0 never slips
    m1 = GridWorld(["S~.", "..G"], slip_prob=1.0).model
    assert dist(m1, m1.state_of(0, 1), DOWN) == pytest.approx(
        {m1.state_of(0, 0): 0.5, m1.state_of(0, 2): 0.5}
    )
    m0 = GridWorld(["S..", "..G"], slippery=True, slip_prob=0.0).model
    assert (m0.n_outcomes == 1).all()


def test_windy_push_uses_start_column():
    m = WindyGrid().model
    s = m.state_of(3, 6)
    assert outcomes(m, s, RIGHT) == {(m.state_of(1, 7), -1.0): 1.0}
    assert outcomes(m, m.state_of(3, 0), RIGHT) == {(m.state_of(3, 1), -1.0): 1.0}
    assert outcomes(m, m.state_of(3, 3), RIGHT) == {(m.state_of(2, 4), -1.0): 1.0}
    # pushed against the top border: stops at row 0
    assert outcomes(m, m.state_of(0, 6), LEFT) == {(m.state_of(0, 5), -1.0): 1.0}
    assert outcomes(m, m.state_of(1, 6), DOWN) == {(m.state_of(0, 6), -1.0): 1.0}
    # the goal is reached from column 8 moving left (wind 1 lifts (4,7) to (3,7)), reward -1, terminal
    goal = m.state_of(3, 7)
    assert outcomes(m, m.state_of(4, 8), LEFT) == {(goal, -1.0): 1.0}
    assert m.terminal[goal] and m.terminal.sum() == 1
    # passing over the goal during a push does not count
    assert outcomes(m, m.state_of(4, 7), UP) == {(m.state_of(1, 7), -1.0): 1.0}


def test_windy_stochastic_wind_thirds():
    m = WindyGrid(stochastic_wind=True).model
    third = pytest.approx(1.0 / 3.0, abs=1e-15)
    got = dist(m, m.state_of(3, 6), RIGHT)
    assert got == {m.state_of(0, 7): third, m.state_of(1, 7): third, m.state_of(2, 7): third}
    got = dist(m, m.state_of(3, 3), RIGHT)
    assert got == {m.state_of(1, 4): third, m.state_of(2, 4): third, m.state_of(3, 4): third}
    # no wind, no randomness
    assert dist(m, m.state_of(3, 0), RIGHT) == {m.state_of(3, 1): 1.0}
    # all three pushes hit the top border: merged into one certain outcome
    i = m.state_of(1, 6) * m.n_actions + RIGHT
    assert m.n_outcomes[i] == 1 and outcomes(m, m.state_of(1, 6), RIGHT) == {(m.state_of(0, 7), -1.0): 1.0}


def test_windy_king_moves():
    m = WindyGrid(king_moves=True).model
    assert m.n_actions == 8
    start = m.state_of(3, 0)
    expected = {
        UP: (2, 0),
        RIGHT: (3, 1),
        DOWN: (4, 0),
        LEFT: (3, 0),
        UP_RIGHT: (2, 1),
        DOWN_RIGHT: (4, 1),
        DOWN_LEFT: (3, 0),
        UP_LEFT: (3, 0),
    }
    for a, (r, c) in expected.items():
        assert outcomes(m, start, a) == {(m.state_of(r, c), -1.0): 1.0}, a
    # diagonal into the windy column: from (3,5) down-right lands (4,6) then wind 1 -> (3,6)
    assert outcomes(m, m.state_of(3, 5), DOWN_RIGHT) == {(m.state_of(3, 6), -1.0): 1.0}


def test_cliff_falls_back_to_start():
    env = CliffWalk()
    m = env.model
    start = m.state_of(3, 0)
    assert m.start_states.tolist() == [start]
    assert outcomes(m, start, RIGHT) == {(start, -100.0): 1.0}
    assert not m.terminal[start]
    assert outcomes(m, m.state_of(2, 5), DOWN) == {(start, -100.0): 1.0}
    assert outcomes(m, start, UP) == {(m.state_of(2, 0), -1.0): 1.0}
    goal = m.state_of(3, 11)
    assert outcomes(m, m.state_of(2, 11), DOWN) == {(goal, -1.0): 1.0}
    assert np.flatnonzero(m.terminal).tolist() == [goal]
    tm = env.transition_model()
    assert tm.R[start, RIGHT] == -100.0 and tm.P[start, RIGHT, start] == 1.0

    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(RIGHT)
    assert (obs, reward, terminated, truncated, info) == (start, -100.0, False, False, {"state": start})


def test_pit_back_to_one_of_several_starts():
    env = GridWorld(["S.S", ".H.", "..G"], pit_terminal=False, pit_reward=-5.0)
    m = env.model
    s1, s2 = m.state_of(0, 0), m.state_of(0, 2)
    assert m.start_states.tolist() == [s1, s2]
    np.testing.assert_array_equal(env.transition_model().initial[[s1, s2]], [0.5, 0.5])
    assert outcomes(m, m.state_of(0, 1), DOWN) == {(s1, -5.0): 0.5, (s2, -5.0): 0.5}
    # stepping onto a start cell normally is a different outcome (same state, other reward)
    assert outcomes(m, m.state_of(1, 0), UP) == {(s1, 0.0): 1.0}


def test_key_door_phases():
    env = KeyDoor()
    m = env.model
    step = -0.01
    # the door blocks without the key
    assert outcomes(m, m.state_of(3, 4, 0), RIGHT) == {(m.state_of(3, 4, 0), step): 1.0}
    # with the key, walking into the door opens it (phase 2) and moves onto it
    assert outcomes(m, m.state_of(3, 4, 1), RIGHT) == {(m.state_of(3, 5, 2), step): 1.0}
    assert outcomes(m, m.state_of(3, 4, 2), RIGHT) == {(m.state_of(3, 5, 2), step): 1.0}
    # an open door stays open
    assert outcomes(m, m.state_of(3, 5, 2), LEFT) == {(m.state_of(3, 4, 2), step): 1.0}
    # picking up the key changes the phase; it is picked up once
    assert outcomes(m, m.state_of(3, 2, 0), DOWN) == {(m.state_of(4, 2, 1), step): 1.0}
    assert outcomes(m, m.state_of(3, 2, 1), DOWN) == {(m.state_of(4, 2, 1), step): 1.0}
    assert outcomes(m, m.state_of(3, 2, 2), DOWN) == {(m.state_of(4, 2, 2), step): 1.0}
    # leaving the key cell keeps the phase
    assert outcomes(m, m.state_of(4, 2, 1), UP) == {(m.state_of(3, 2, 1), step): 1.0}
    # the goal in every phase it can be reached is terminal and pays 1
    assert outcomes(m, m.state_of(3, 7, 2), RIGHT) == {(m.state_of(3, 8, 2), 1.0): 1.0}
    assert m.terminal[[m.state_of(3, 8, p) for p in range(3)]].all()
    assert m.start_states.tolist() == [m.state_of(2, 2, 0)]

    # the same through the environment: walk to the key, then the door, then the goal
    env.reset(seed=0)
    path = [DOWN, DOWN, UP, RIGHT, RIGHT, RIGHT, RIGHT, RIGHT, RIGHT]
    states = [env.step(a)[4]["state"] for a in path]
    assert states[1] == m.state_of(4, 2, 1)
    assert states[4] == m.state_of(3, 4, 1)
    assert states[5] == m.state_of(3, 5, 2)
    *_, terminated, _, info = env.step(RIGHT)
    assert info["state"] == m.state_of(3, 8, 2) and terminated


def test_wind_stops_at_walls_and_closed_doors():
    rows = ["S.#", "K.D", "..G", "..."]
    env = GridWorld(rows, wind=(0, 3, 0))
    m = env.model
    # (3,0) right -> (3,1), wind 0 from column 0
    assert outcomes(m, m.state_of(3, 0), RIGHT) == {(m.state_of(3, 1), 0.0): 1.0}
    # column 1: pushed up 3 but the border stops it at row 0
    assert outcomes(m, m.state_of(3, 1), UP) == {(m.state_of(0, 1), 0.0): 1.0}
    env2 = GridWorld(["S..", "K.D", "..G", "..."], wind=(0, 3, 0))
    m2 = env2.model
    # starting in column 1 (wind 3), moving right to (3,2): pushed up through (2,2) (the goal) and
    # stopped by the closed door at (1,2), so it lands on the goal
    assert outcomes(m2, m2.state_of(3, 1, 0), RIGHT) == {(m2.state_of(2, 2, 0), 1.0): 1.0}
    # carrying the key the door does not stop the wind: pushed through it to (0,2)
    assert outcomes(m2, m2.state_of(3, 1, 1), RIGHT) == {(m2.state_of(0, 2, 1), 0.0): 1.0}


# ----- a property test on random maps -----


@st.composite
def random_worlds(draw):
    height = draw(st.integers(1, 5))
    width = draw(st.integers(2 if height == 1 else 1, 5))
    cells = [draw(st.sampled_from(".#H~")) for _ in range(height * width)]
    n = height * width
    start, goal = draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True))
    cells[start], cells[goal] = "S", "G"
    free = [i for i in range(n) if i not in (start, goal)]
    if len(free) >= 2 and draw(st.booleans()):
        key, door = draw(st.lists(st.sampled_from(free), min_size=2, max_size=2, unique=True))
        cells[key], cells[door] = "K", "D"
    rows = ["".join(cells[r * width : (r + 1) * width]) for r in range(height)]
    kwargs = {
        "slippery": draw(st.booleans()),
        "slip_prob": draw(st.sampled_from([0.0, 0.2, 0.5, 2.0 / 3.0, 1.0])),
        "king_moves": draw(st.booleans()),
        "stochastic_wind": draw(st.booleans()),
        "pit_terminal": draw(st.booleans()),
        "step_reward": draw(st.sampled_from([0.0, -1.0, -0.01])),
        "pit_reward": draw(st.sampled_from([-1.0, -100.0])),
    }
    if draw(st.booleans()):
        kwargs["wind"] = draw(st.lists(st.integers(0, 3), min_size=width, max_size=width))
    return rows, kwargs


@settings(max_examples=300, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(world=random_worlds(), seed=st.integers(0, 2**32 - 1))
def test_random_maps_env_follows_model(world, seed):
    rows, kwargs = world
    try:
        env = GridWorld(rows, **kwargs)
    except MapError as exc:
        assert "no goal can be reached" in str(exc)
        assume(False)
    model = env.model
    tm = env.transition_model()
    assert (tm.P >= 0).all()
    np.testing.assert_allclose(tm.P.sum(axis=2), 1.0, rtol=0, atol=1e-12)
    assert abs(tm.initial.sum() - 1.0) <= 1e-12
    for s in np.flatnonzero(tm.terminal):
        assert (tm.P[s, :, s] == 1.0).all() and (tm.R[s] == 0.0).all()

    actions = np.random.default_rng(seed).integers(model.n_actions, size=60)
    _, info = env.reset(seed=seed)
    s = info["state"]
    assert tm.initial[s] > 0
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(int(a))
        s2 = info["state"]
        assert obs == s2 == env.state
        assert tm.P[s, a, s2] > 0
        assert (s2, reward) in outcomes(model, s, int(a))
        assert terminated == bool(tm.terminal[s2]) and truncated is False
        s = s2
        if terminated:
            _, info = env.reset()
            s = info["state"]


def test_a_transition_model_is_the_callers_to_change_without_touching_the_env():
    env = GridWorld(["S.H.G", "....."])
    tm = env.transition_model()
    for array in (tm.P, tm.R, tm.terminal, tm.initial):
        array[...] = 0  # e.g. a planner marking states, or a user's what-if edit
    fresh = env.transition_model()
    assert fresh.terminal.sum() == 2 and fresh.initial.sum() == 1.0
    np.testing.assert_allclose(fresh.P.sum(axis=2), 1.0)
    assert env.model.terminal.tolist() == [False, False, True, False, True] + [False] * 5
