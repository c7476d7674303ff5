"""Maps and arguments that cannot make an environment are refused with a message naming the problem."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest

from envs import EnvError, GridWorld, InvalidActionError, MapError
from envs.grid import OBS_TYPES, Tile, parse_map
from envs.grid.layout import CHARS
from envs.grid.presets import IceLake, Maze, WindyGrid
from envs.grid.vector import GridVectorEnv


def test_error_hierarchy():
    assert issubclass(MapError, EnvError)
    assert issubclass(InvalidActionError, EnvError)
    assert issubclass(EnvError, ValueError)


# ----- parsing -----


def test_parse_round_trip_and_tiles():
    rows = ["#S.~", "HKDG"]
    layout = parse_map(rows)
    assert layout.rows() == rows
    assert layout.shape == (2, 4)
    assert layout.tiles.dtype == np.uint8
    assert layout.tiles.tolist() == [[CHARS[c] for c in r] for r in rows]
    assert layout.has_key
    # Only the '~' cell is ice on a non-slippery map; every non-wall cell is ice on a slippery one.
    assert layout.ice.tolist() == [[False, False, False, True], [False, False, False, False]]
    slippery = parse_map(rows, slippery=True)
    assert slippery.ice.tolist() == [[False, True, True, True], [True, True, True, True]]


def test_parse_multiline_string_equals_list():
    text = """
        S.#
        ..G
    """
    assert parse_map(text).rows() == ["S.#", "..G"]


@pytest.mark.parametrize(
    ("rows", "char", "row", "col"),
    [
        (["S.x", "..G"], "x", 0, 2),
        (["S..", ".?G"], "?", 1, 1),
        (["S..", "..G", "F.."], "F", 2, 0),
        (["S. ", "..G"], " ", 0, 2),
    ],
)
def test_unknown_character_names_char_row_and_column(rows, char, row, col):
    with pytest.raises(MapError) as info:
        parse_map(rows)
    message = str(info.value)
    assert repr(char) in message
    assert f"row {row}, column {col}" in message


def test_unknown_character_through_env():
    with pytest.raises(MapError, match=r"'x' at row 1, column 0"):
        GridWorld(["S.", "xG"])


def test_ragged_rows():
    with pytest.raises(MapError, match=r"ragged map: row 1 has 2 cells but row 0 has 3"):
        parse_map(["S.G", ".."])


@pytest.mark.parametrize("rows", [[], [""], ["", ""], ""])
def test_empty_map(rows):
    with pytest.raises(MapError, match="empty"):
        parse_map(rows)


def test_not_a_list_of_strings():
    with pytest.raises(MapError, match="list of strings"):
        parse_map([["S", "G"]])
    with pytest.raises(MapError, match="list of strings"):
        parse_map(12)


def test_no_start():
    with pytest.raises(MapError, match="no start"):
        parse_map(["..G"])


def test_no_goal():
    with pytest.raises(MapError, match="no goal"):
        parse_map(["S.."])


def test_two_keys_or_two_doors():
    with pytest.raises(MapError, match="at most one key"):
        parse_map(["SKK.DG"])
    with pytest.raises(MapError, match="at most one key"):
        parse_map(["SK.DDG"])


def test_door_without_key():
    with pytest.raises(MapError, match="door 'D' but no key"):
        parse_map(["S.DG"])


@pytest.mark.parametrize(
    "rows",
    [
        ["S#G"],  # wall between
        ["S.#", "###", "..G"],  # goal in a walled-off room
        ["SHG"],  # a (terminal) pit in the only corridor
        ["S.#K", "###D", "..#G"],  # door guards the goal, but the key is walled off too
        ["SK#G", "..D#"],  # door leads nowhere near the goal
    ],
)
def test_unreachable_goal(rows):
    with pytest.raises(MapError, match="no goal can be reached"):
        GridWorld(rows)


def test_reachable_only_through_door_with_key_is_fine():
    env = GridWorld(["SK#G", "..D."])
    assert env.model.n_phases == 3


def test_pit_that_returns_to_start_does_not_cut_off():
    # With pit_terminal=False a pit is passable in the sense that it sends the agent back to
    # start; still the goal must be reached another way, so a lone corridor pit cuts it off.
    with pytest.raises(MapError, match="no goal can be reached"):
        GridWorld(["SHG"], pit_terminal=False)
    GridWorld(["SHG", "..."], pit_terminal=False)


# ----- preset arguments -----


def test_icelake_bad_map_name():
    with pytest.raises(MapError, match=r"unknown IceLake map_name '5x5'; choose one of: 4x4, 8x8"):
        IceLake(map_name="5x5")
    with pytest.raises(MapError):
        gym.make("lab/IceLake-v0", map_name="16x16")


@pytest.mark.parametrize("size", [4, 6, 3, 1, 0, -5, 7.0, "9", True])
def test_maze_bad_size(size):
    with pytest.raises(MapError, match="odd integer >= 5"):
        Maze(size=size)


@pytest.mark.parametrize("maze_seed", [-1, -100, 1.5, "0", None, True])
def test_maze_bad_seed(maze_seed):
    with pytest.raises(MapError, match="maze_seed must be an integer >= 0"):
        Maze(maze_seed=maze_seed)


def test_maze_seed_fixes_layout():
    a, b, c = Maze(size=11, maze_seed=5), Maze(size=11, maze_seed=5), Maze(size=11, maze_seed=6)
    assert a.model.layout.rows() == b.model.layout.rows()
    assert a.model.layout.rows() != c.model.layout.rows()


@pytest.mark.parametrize("wind", [(0, 1), (0,) * 11, ()])
def test_wind_wrong_length(wind):
    with pytest.raises(MapError, match=rf"the map has 10 columns, wind has {len(wind)}"):
        WindyGrid(wind=wind)


@pytest.mark.parametrize("last", [-1, 1.5, float("inf"), float("nan"), "abc", True, None])
def test_wind_negative_fractional_or_not_a_number(last):
    wind = (0, 0, 0, 1, 1, 1, 2, 2, 1, last)
    with pytest.raises(MapError, match="wind strengths are whole numbers >= 0"):
        WindyGrid(wind=wind)


@pytest.mark.parametrize("slip_prob", [-0.01, 1.0001, 2.0, float("nan"), float("inf")])
def test_slip_prob_outside_unit_interval(slip_prob):
    with pytest.raises(MapError, match="slip_prob must lie in"):
        IceLake(slip_prob=slip_prob)


@pytest.mark.parametrize("slip_prob", [0.0, 1.0])
def test_slip_prob_bounds_accepted(slip_prob):
    IceLake(slip_prob=slip_prob)


@pytest.mark.parametrize("name", ["step_reward", "goal_reward", "pit_reward"])
def test_non_finite_rewards(name):
    with pytest.raises(MapError, match=f"{name} must be a finite number"):
        GridWorld(**{name: float("nan")})


def test_unknown_obs_type_lists_valid_types():
    with pytest.raises(EnvError) as info:
        GridWorld(obs_type="rgb")
    message = str(info.value)
    assert "'rgb'" in message
    for obs_type in OBS_TYPES:
        assert obs_type in message
    with pytest.raises(EnvError):
        gym.make("lab/CliffWalk-v0", obs_type="image")


@pytest.mark.filterwarnings("ignore:.*render_mode=.video.:UserWarning")
def test_unknown_render_mode():
    with pytest.raises(EnvError, match=r"unknown render_mode 'rgb'; choose one of: human, rgb_array, ansi"):
        GridWorld(render_mode="rgb")
    with pytest.raises(EnvError):
        gym.make("lab/CliffWalk-v0", render_mode="video")


def test_unknown_env_id():
    with pytest.raises(gym.error.Error):
        gym.make("lab/NoSuchWorld-v0")
    with pytest.raises(gym.error.Error):
        gym.make_vec("lab/NoSuchWorld-v0", num_envs=2, vectorization_mode="vector_entry_point")


# ----- actions -----


@pytest.mark.parametrize("action", [4, -1, 1.5, "a", True, False, None, np.int64(7), np.float32(1.0), [0, 1]])
def test_invalid_action_rejected_and_state_unchanged(action):
    env = gym.make("lab/IceLake-v0", max_episode_steps=5)
    env.reset(seed=3)
    _, _, _, _, info = env.step(2)
    inner = env.unwrapped
    before = (inner.state, inner._t, inner._return, inner._last_action, info["state"])
    with pytest.raises(InvalidActionError):
        env.step(action)
    assert (inner.state, inner._t, inner._return, inner._last_action, info["state"]) == before
    # The next valid step is the one an untouched twin would take, and the time limit still counts
    # only valid steps.
    twin = gym.make("lab/IceLake-v0", max_episode_steps=5)
    twin.reset(seed=3)
    twin.step(2)
    for a in (1, 1, 2, 1):
        assert env.step(a) == twin.step(a)


@pytest.mark.parametrize("action", [np.int64(2), np.uint8(1), np.array(3), np.array([0])])
def test_numpy_integer_actions_accepted(action):
    env = IceLake(slippery=False)
    env.reset(seed=0)
    twin = IceLake(slippery=False)
    twin.reset(seed=0)
    assert env.step(action)[1:] == twin.step(int(np.asarray(action).reshape(())))[1:]


def test_action_message_names_the_space():
    env = GridWorld()
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match=re.escape("outside the action space Discrete(4)")):
        env.step(4)
    king = WindyGrid(king_moves=True)
    king.reset(seed=0)
    king.step(7)
    with pytest.raises(InvalidActionError, match=re.escape("Discrete(8)")):
        king.step(8)


def test_step_before_reset():
    with pytest.raises(RuntimeError, match="reset"):
        GridWorld().step(0)


@pytest.mark.parametrize(
    "actions",
    [
        np.zeros(3, dtype=np.int64),  # wrong length
        np.zeros((4, 1), dtype=np.int64),  # wrong shape
        np.zeros(4, dtype=np.float64),  # float dtype
        np.zeros(4, dtype=bool),  # bool dtype
        np.array([0, 1, 4, 2]),  # out of range
        np.array([0, -1, 0, 0]),  # negative
        [0, 1, 2],
        5,
    ],
)
def test_vector_invalid_actions_rejected_and_state_unchanged(actions):
    venv = gym.make_vec(
        "lab/IceLake8x8-v0", num_envs=4, vectorization_mode="vector_entry_point", max_episode_steps=6
    )
    venv.reset(seed=11)
    venv.step(np.array([1, 2, 1, 2]))
    inner = venv.unwrapped
    before = [a.copy() for a in (inner._state, inner._t, inner._episode, inner._key, inner._needs_reset)]
    with pytest.raises(InvalidActionError):
        venv.step(actions)
    after = (inner._state, inner._t, inner._episode, inner._key, inner._needs_reset)
    for x, y in zip(before, after, strict=True):
        np.testing.assert_array_equal(x, y)
    twin = gym.make_vec(
        "lab/IceLake8x8-v0", num_envs=4, vectorization_mode="vector_entry_point", max_episode_steps=6
    )
    twin.reset(seed=11)
    twin.step(np.array([1, 2, 1, 2]))
    for _ in range(8):
        a = np.array([2, 1, 1, 0])
        for x, y in zip(venv.step(a), twin.step(a), strict=True):
            if isinstance(x, dict):
                np.testing.assert_array_equal(x["state"], y["state"])
            else:
                np.testing.assert_array_equal(x, y)


def test_vector_out_of_range_message_names_copy():
    venv = GridVectorEnv(IceLake(), num_envs=3)
    venv.reset(seed=0)
    with pytest.raises(InvalidActionError, match="action 9 of copy 2"):
        venv.step(np.array([0, 1, 9]))


@pytest.mark.parametrize("num_envs", [0, -1, 2.0, True, "4"])
def test_vector_bad_num_envs(num_envs):
    with pytest.raises(EnvError, match="num_envs"):
        GridVectorEnv(IceLake(), num_envs=num_envs)


@pytest.mark.parametrize("steps", [0, -3, 2.5])
def test_vector_bad_max_episode_steps(steps):
    with pytest.raises(EnvError, match="max_episode_steps"):
        GridVectorEnv(IceLake(), num_envs=2, max_episode_steps=steps)


def test_vector_refuses_human_render():
    with pytest.raises(EnvError, match="rgb_array"):
        gym.make_vec(
            "lab/IceLake-v0", num_envs=2, vectorization_mode="vector_entry_point", render_mode="human"
        )


@pytest.mark.parametrize("seed", [[1, 2], [1, 2, 3, 4], [1.0, 2.0, 3.0], ["a", "b", "c"]])
def test_vector_bad_seed_list(seed):
    venv = GridVectorEnv(IceLake(), num_envs=3)
    with pytest.raises(EnvError, match="list of 3 ints"):
        venv.reset(seed=seed)


def test_tile_values_are_stable():
    assert [(t.name, int(t)) for t in Tile] == [
        ("FLOOR", 0),
        ("WALL", 1),
        ("START", 2),
        ("GOAL", 3),
        ("PIT", 4),
        ("ICE", 5),
        ("KEY", 6),
        ("DOOR", 7),
    ]


@pytest.mark.parametrize("size", [5, 7, 15])
def test_a_generated_maze_is_a_perfect_maze_from_top_left_to_bottom_right(size):
    from envs.grid.maze import generate_maze

    rows = generate_maze(size, maze_seed=3)
    assert rows[1][1] == "S" and rows[size - 2][size - 2] == "G"
    assert "".join(rows).count("S") == 1 and "".join(rows).count("G") == 1
    open_cells = {(r, c) for r in range(size) for c in range(size) if rows[r][c] != "#"}
    rooms = ((size - 1) // 2) ** 2
    # a spanning tree of the rooms: every room open, and exactly rooms - 1 walls knocked down
    assert all((r, c) in open_cells for r in range(1, size, 2) for c in range(1, size, 2))
    assert len(open_cells) == rooms + rooms - 1
    seen, todo = {(1, 1)}, [(1, 1)]
    while todo:
        r, c = todo.pop()
        for step in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if step in open_cells and step not in seen:
                seen.add(step)
                todo.append(step)
    assert seen == open_cells  # connected, so with cells = 2 * rooms - 1 it has no loop


def test_a_maze_seed_gives_the_same_maze_in_every_release():
    from envs.grid.maze import generate_maze

    # pinned: a saved run or a replay names its maze by (size, maze_seed) only
    assert generate_maze(7, maze_seed=3) == [
        "#######",
        "#S#...#",
        "#.#.#.#",
        "#...#.#",
        "#####.#",
        "#....G#",
        "#######",
    ]
