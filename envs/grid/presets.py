"""The registered grid worlds: classic problems from the RL literature, each a :class:`GridWorld`."""

from __future__ import annotations

from typing import Any

from envs.errors import MapError
from envs.grid.maze import generate_maze
from envs.grid.world import GridWorld

CLIFF_MAP = (
    "............",
    "............",
    "............",
    "SHHHHHHHHHHG",
)

WINDY_MAP = (
    "..........",
    "..........",
    "..........",
    "S......G..",
    "..........",
    "..........",
    "..........",
)
WINDY_WIND = (0, 0, 0, 1, 1, 1, 2, 2, 1, 0)

# FrozenLake's maps (gymnasium.envs.toy_text.frozen_lake.MAPS) in our alphabet: F -> '.', all of it ice.
ICE_MAPS: dict[str, tuple[str, ...]] = {
    "4x4": ("S...", ".H.H", "...H", "H..G"),
    "8x8": (
        "S.......",
        "........",
        "...H....",
        ".....H..",
        "...H....",
        ".HH...H.",
        ".H..H.H.",
        "...H...G",
    ),
}

FOUR_ROOMS_MAP = (
    "#############",
    "#S....#.....#",
    "#.....#.....#",
    "#...........#",
    "#.....#.....#",
    "#.....#.....#",
    "##.####.....#",
    "#.....###.###",
    "#.....#.....#",
    "#.....#.....#",
    "#...........#",
    "#.....#....G#",
    "#############",
)

KEY_DOOR_MAP = (
    "###########",
    "#....#....#",
    "#.S..#....#",
    "#....D..G.#",
    "#.K..#....#",
    "#....#....#",
    "###########",
)

_COMMON_ARGS = """``obs_type="index"`` (``index``, ``coords``, ``onehot``, ``symbolic``, ``pixels``),
    ``render_mode=None`` (``human``, ``rgb_array``, ``ansi``), ``obs_tile_size=8``,
    ``render_tile_size=None``"""

_OBS_SPACES = """Chosen with ``obs_type`` as for :class:`GridWorld`: ``index`` is
    ``Discrete(n_states)``; ``coords``, ``onehot``, ``symbolic`` and ``pixels`` as documented there."""


_INFORMATION = """## Information
    ``reset`` and ``step`` return ``info = {"state": s}``, the state number, as :class:`GridWorld` does.

    ## Arguments"""


def _with_common(doc: str) -> str:
    """``doc`` with the shared parts filled in, and the Information section before Arguments."""
    doc = doc.replace("{COMMON_ARGS}", _COMMON_ARGS).replace("{OBS_SPACES}", _OBS_SPACES)
    return doc.replace("## Arguments", _INFORMATION, 1)


class CliffWalk(GridWorld):
    __doc__ = _with_common(
        """Sutton & Barto's cliff walking (Example 6.6): a 4x12 grid with a cliff along the bottom edge.

    ## Description
    The start is the bottom-left cell and the goal the bottom-right; the cells between them are
    a cliff. Falling off costs -100 and sends the agent back to the start. The example that
    shows Q-learning walking the cliff edge while SARSA takes the safe path.

    ## Action Space
    ``Discrete(4)``: 0 up, 1 right, 2 down, 3 left.

    ## Observation Space
    {OBS_SPACES} ``Discrete(48)`` with index observations.

    ## Starting State
    The bottom-left cell (row 3, column 0).

    ## Rewards
    -1 for every step, including the one onto the goal; -100 for stepping into the cliff.

    ## Episode End
    Terminated on reaching the goal. Truncated after 500 steps (``max_episode_steps``).

    ## Arguments
    {COMMON_ARGS}. Other :class:`GridWorld` arguments (``step_reward``, ``slippery``, ...) pass
    through.

    ## Version History
    * v0: initial version.
    """
    )

    def __init__(self, **kwargs: Any) -> None:
        options = dict(step_reward=-1.0, goal_reward=-1.0, pit_reward=-100.0, pit_terminal=False)
        super().__init__(CLIFF_MAP, **{**options, **kwargs})


class WindyGrid(GridWorld):
    __doc__ = _with_common(
        """Sutton & Barto's windy gridworld (Example 6.5, Exercises 6.9 and 6.10): 7x10 with an upward wind.

    ## Description
    A crosswind blows up through the middle columns with strengths 0 0 0 1 1 1 2 2 1 0; the wind
    of the column the agent starts a step in pushes it up that many cells. The optimal path takes
    15 steps. ``king_moves=True`` adds the four diagonal moves (optimal: 7 steps);
    ``stochastic_wind=True`` makes each non-zero push vary by one cell up or down, 1/3 each.

    ## Action Space
    ``Discrete(4)``: 0 up, 1 right, 2 down, 3 left; ``Discrete(8)`` with ``king_moves=True``
    (adding 4 up-right, 5 down-right, 6 down-left, 7 up-left).

    ## Observation Space
    {OBS_SPACES} ``Discrete(70)`` with index observations.

    ## Starting State
    Row 3, column 0. The goal is row 3, column 7.

    ## Rewards
    -1 for every step, including the one onto the goal.

    ## Episode End
    Terminated on reaching the goal. Truncated after 500 steps (``max_episode_steps``).

    ## Arguments
    ``king_moves=False``, ``stochastic_wind=False``, {COMMON_ARGS}.

    ## Version History
    * v0: initial version.
    """
    )

    def __init__(self, king_moves: bool = False, stochastic_wind: bool = False, **kwargs: Any) -> None:
        options = dict(step_reward=-1.0, goal_reward=-1.0, wind=WINDY_WIND)
        super().__init__(
            WINDY_MAP, king_moves=king_moves, stochastic_wind=stochastic_wind, **{**options, **kwargs}
        )


class IceLake(GridWorld):
    __doc__ = _with_common(
        """FrozenLake on our grid engine: the same maps, the same slip rule, the same rewards.

    ## Description
    Cross a frozen lake from the start to the goal without falling into a hole. The ice is
    slippery: the agent moves in the intended direction with probability 1/3 and slips to either
    perpendicular direction with probability 1/3 each (FrozenLake's rule). Value iteration on this
    model equals value iteration on gymnasium's ``FrozenLake-v1`` table to 1e-8.

    ## Action Space
    ``Discrete(4)``: 0 up, 1 right, 2 down, 3 left (FrozenLake orders them left, down, right, up).

    ## Observation Space
    {OBS_SPACES} ``Discrete(16)`` or ``Discrete(64)`` with index observations, numbered as
    FrozenLake numbers them (``row * ncol + col``).

    ## Starting State
    The top-left cell.

    ## Rewards
    1 for reaching the goal, 0 otherwise.

    ## Episode End
    Terminated on reaching the goal or falling into a hole. Truncated after 100 steps for
    ``lab/IceLake-v0`` and 200 for ``lab/IceLake8x8-v0``, as for FrozenLake.

    ## Arguments
    ``map_name="4x4"`` (or ``"8x8"``), ``slippery=True``, ``slip_prob=2/3``, {COMMON_ARGS}.

    ## Version History
    * v0: initial version.
    """
    )

    def __init__(
        self, map_name: str = "4x4", slippery: bool = True, slip_prob: float = 2.0 / 3.0, **kwargs: Any
    ) -> None:
        if map_name not in ICE_MAPS:
            raise MapError(f"unknown IceLake map_name {map_name!r}; choose one of: {', '.join(ICE_MAPS)}")
        options = dict(step_reward=0.0, goal_reward=1.0, pit_reward=0.0)
        super().__init__(ICE_MAPS[map_name], slippery=slippery, slip_prob=slip_prob, **{**options, **kwargs})


class FourRooms(GridWorld):
    __doc__ = _with_common(
        """The four-rooms domain of Sutton, Precup & Singh (1999): four rooms joined by four hallways.

    ## Description
    A 13x13 grid (11x11 inside the walls) split into four rooms connected by one-cell hallways.
    The start is the top-left corner of the top-left room, the goal the bottom-right corner of the
    bottom-right room. The classic testbed for options and temporal abstraction.

    ## Action Space
    ``Discrete(4)``: 0 up, 1 right, 2 down, 3 left.

    ## Observation Space
    {OBS_SPACES} ``Discrete(104)`` with index observations.

    ## Starting State
    Row 1, column 1.

    ## Rewards
    1 for reaching the goal, 0 for every other step (as in the paper; discount to prefer short
    paths).

    ## Episode End
    Terminated on reaching the goal. Truncated after 500 steps (``max_episode_steps``).

    ## Arguments
    {COMMON_ARGS}. Other :class:`GridWorld` arguments pass through.

    ## Version History
    * v0: initial version.
    """
    )

    def __init__(self, **kwargs: Any) -> None:
        options = dict(step_reward=0.0, goal_reward=1.0)
        super().__init__(FOUR_ROOMS_MAP, **{**options, **kwargs})


class Maze(GridWorld):
    __doc__ = _with_common(
        """A procedurally generated perfect maze: one path between any two cells, always solvable.

    ## Description
    A ``size`` x ``size`` maze carved by randomized depth-first search. ``maze_seed`` fixes the
    layout (the same seed gives the same maze on every machine); the episode seed passed to
    ``reset`` does not change it.

    ## Action Space
    ``Discrete(4)``: 0 up, 1 right, 2 down, 3 left.

    ## Observation Space
    {OBS_SPACES}

    ## Starting State
    Row 1, column 1 (top-left). The goal is the bottom-right room.

    ## Rewards
    1 for reaching the goal, -0.01 for every other step.

    ## Episode End
    Terminated on reaching the goal. Truncated after 1000 steps (``max_episode_steps``).

    ## Arguments
    ``size=9`` (odd, >= 5), ``maze_seed=0``, {COMMON_ARGS}.

    ## Version History
    * v0: initial version.
    """
    )

    def __init__(self, size: int = 9, maze_seed: int = 0, **kwargs: Any) -> None:
        options = dict(step_reward=-0.01, goal_reward=1.0)
        self.size, self.maze_seed = size, maze_seed
        super().__init__(generate_maze(size, maze_seed), **{**options, **kwargs})


class KeyDoor(GridWorld):
    __doc__ = _with_common(
        """Two rooms and a locked door: fetch the key, open the door, reach the goal.

    ## Description
    The agent starts in the left room; the goal is in the right room behind a locked door. Walking
    over the key picks it up; walking into the door while carrying it opens the door for good. The
    state covers the key and door: 3 phases (key on the floor, key carried, door open) times the
    walkable cells, so index observations stay Markov.

    ## Action Space
    ``Discrete(4)``: 0 up, 1 right, 2 down, 3 left.

    ## Observation Space
    {OBS_SPACES} ``Discrete(123)`` with index observations; ``coords`` adds
    ``[key carried, door open]``.

    ## Starting State
    Row 2, column 2, key on the floor, door closed.

    ## Rewards
    1 for reaching the goal, -0.01 for every other step.

    ## Episode End
    Terminated on reaching the goal. Truncated after 300 steps (``max_episode_steps``).

    ## Arguments
    {COMMON_ARGS}. Other :class:`GridWorld` arguments pass through.

    ## Version History
    * v0: initial version.
    """
    )

    def __init__(self, **kwargs: Any) -> None:
        options = dict(step_reward=-0.01, goal_reward=1.0)
        super().__init__(KEY_DOOR_MAP, **{**options, **kwargs})
