"""The grid-world environment: one class, any ASCII map."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from gymnasium import spaces

from envs.arguments import flag, number
from envs.errors import EnvError, InvalidActionError
from envs.grid import rng
from envs.grid.layout import TILE_CHAR, Tile, parse_map
from envs.grid.model import ACTION_NAMES, Dynamics, GridModel, TransitionModel
from envs.grid.observations import ObservationEncoder, check_obs_type
from envs.grid.painter import check_tile_size
from envs.rendering import FrameRendering

if TYPE_CHECKING:
    from envs.grid.painter import GridPainter

DEFAULT_MAP = (
    "#######",
    "#S....#",
    "#.##..#",
    "#..H..#",
    "#.#..G#",
    "#######",
)


def check_action(action: Any, n_actions: int) -> int:
    """The action as an int, or :class:`InvalidActionError` saying why it is not one."""
    if isinstance(action, np.ndarray) and action.shape in ((), (1,)):
        action = action.reshape(())[()]
    if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
        raise InvalidActionError(
            f"an action is an integer in [0, {n_actions - 1}]; got {action!r} of type {type(action).__name__}"
        )
    if not 0 <= action < n_actions:
        raise InvalidActionError(f"action {action} is outside the action space Discrete({n_actions})")
    return int(action)


def default_render_tile(shape: tuple[int, int]) -> int:
    """Pixels per cell for display: big cells for small maps, the frame about 600 px on its long side."""
    return int(np.clip(600 // max(shape), 12, 96))


class GridWorld(FrameRendering):
    """A grid world built from an ASCII map, with an exact transition model.

    ## Description
    The agent walks a grid of cells drawn from an ASCII map. Tiles: ``.`` floor, ``#`` wall,
    ``S`` start, ``G`` goal, ``H`` pit (hole, lava, cliff), ``~`` ice, ``K`` key, ``D`` door.
    On ice a move slips sideways with probability ``slip_prob`` (FrozenLake's rule by default);
    a per-column wind pushes the agent up (Sutton & Barto's windy gridworld); the door opens only
    when the agent walks into it carrying the key. The dynamics are compiled into tables that the
    environment samples from and that :meth:`transition_model` returns exactly, so planners in
    ``agents.planning`` compute true optimal values. Random draws are counter-based
    (see ``envs.grid.rng``), which lets ``GridVectorEnv`` reproduce single environments exactly.

    ## Action Space
    ``Discrete(4)``: 0 up, 1 right, 2 down, 3 left. With ``king_moves=True``, ``Discrete(8)``
    adding 4 up-right, 5 down-right, 6 down-left, 7 up-left. ``envs`` names them: ``UP``, ``RIGHT``,
    ``DOWN``, ``LEFT``, ``UP_RIGHT``, ``DOWN_RIGHT``, ``DOWN_LEFT``, ``UP_LEFT``.

    ## Observation Space
    Chosen with ``obs_type``: ``index`` is ``Discrete(n_states)``, the state number
    (``phase * n_cells + cell``, walkable cells in row-major order; the phase is 0, 1 or 2 for key
    on the floor, key carried, door open, on maps with a key). ``coords`` is float32
    ``[row, col]`` (plus ``[key carried, door open]`` with a key). ``onehot`` is a float32 one-hot
    of the state number. ``symbolic`` is ``(H, W, 8)`` uint8 planes: wall, goal, pit, ice, wind
    strength, key, closed door, agent. ``pixels`` is an RGB uint8 image, ``obs_tile_size`` pixels
    per cell.

    ## Starting State
    A start cell ``S`` (uniformly at random when the map has several), key on the floor.

    ## Rewards
    ``goal_reward`` for a step that ends on a goal, ``pit_reward`` for one that ends in a pit,
    ``step_reward`` for every other step.

    ## Episode End
    Terminated on reaching a goal or falling into a pit (unless ``pit_terminal=False``, where a
    pit sends the agent back to the start). Truncated after ``max_episode_steps`` steps when made
    with ``gymnasium.make(..., max_episode_steps=N)`` (the registered presets set a limit).

    ## Information
    ``reset`` and ``step`` return ``info = {"state": s}``: the state number ``s`` (what ``index``
    observations show), whatever ``obs_type`` is. Replays record it, and the viewer's value overlay
    reads the agent's cell and key/door phase from it.

    ## Arguments
    ``ascii_map`` (list of rows or one multi-line string), ``obs_type="index"``,
    ``render_mode=None`` (``"human"``, ``"rgb_array"``, ``"ansi"``), ``slippery=False`` (every
    walkable cell is ice), ``slip_prob=2/3``, ``wind=None`` (one upward push per column),
    ``stochastic_wind=False``, ``king_moves=False``, ``step_reward=0.0``, ``goal_reward=1.0``,
    ``pit_reward=-1.0``, ``pit_terminal=True``, ``obs_tile_size=8`` (pixels per cell of ``pixels``
    observations), ``render_tile_size=None`` (pixels per cell of rendered frames; chosen from the
    map size when ``None``).

    ## Version History
    * v0: initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["human", "rgb_array", "ansi"], "render_fps": 8}

    def __init__(
        self,
        ascii_map: Sequence[str] | str = DEFAULT_MAP,
        *,
        obs_type: str = "index",
        render_mode: str | None = None,
        slippery: bool = False,
        slip_prob: float = 2.0 / 3.0,
        wind: Sequence[int] | None = None,
        stochastic_wind: bool = False,
        king_moves: bool = False,
        step_reward: float = 0.0,
        goal_reward: float = 1.0,
        pit_reward: float = -1.0,
        pit_terminal: bool = True,
        obs_tile_size: int = 8,
        render_tile_size: int | None = None,
    ) -> None:
        check_obs_type(obs_type)
        modes = self.metadata["render_modes"]
        if render_mode is not None and render_mode not in modes:
            raise EnvError(f"unknown render_mode {render_mode!r}; choose one of: {', '.join(modes)}")
        layout = parse_map(ascii_map, slippery=flag("slippery", slippery))
        dynamics = Dynamics(
            slip_prob=number("slip_prob", slip_prob),
            wind=None if wind is None else tuple(wind),
            stochastic_wind=flag("stochastic_wind", stochastic_wind),
            king_moves=flag("king_moves", king_moves),
            step_reward=number("step_reward", step_reward),
            goal_reward=number("goal_reward", goal_reward),
            pit_reward=number("pit_reward", pit_reward),
            pit_terminal=flag("pit_terminal", pit_terminal),
        )
        self.model = GridModel(layout, dynamics)
        self.obs_type = obs_type
        self.render_mode = render_mode
        self.encoder = ObservationEncoder(self.model, obs_type, obs_tile_size)
        self.observation_space = self.encoder.space
        self.action_space = spaces.Discrete(self.model.n_actions)
        if render_tile_size is not None:  # checked now, not at the first render()
            check_tile_size(render_tile_size, layout.shape)
        self.render_tile_size = render_tile_size or default_render_tile(layout.shape)

        # Hot-path copies of the outcome tables as Python lists: scalar list indexing is several
        # times faster than numpy scalar indexing.
        model = self.model
        self._n_actions = model.n_actions
        self._n_outcomes = model.n_outcomes.tolist()
        self._next = model.next_state.tolist()
        self._reward = model.reward.tolist()
        self._cdf = model.cdf.tolist()
        self._terminal = model.terminal.tolist()
        self._starts = model.start_states.tolist()

        self._base_key: int | None = None
        self._episode = 0
        self._episode_key = 0
        self._state: int | None = None
        self._t = 0
        self._return = 0.0
        self._last_action: int | None = None
        self._painter: GridPainter | None = None

    # ----- the MDP -----

    def transition_model(self) -> TransitionModel:
        """The exact MDP: ``P[S, A, S']``, ``R[S, A]``, terminal flags and start distribution."""
        return self.model.transition_model()

    @property
    def state(self) -> int | None:
        """The current state index (``None`` before the first reset)."""
        return self._state

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self._base_key, self._episode, self._episode_key = rng.next_episode(
            seed, self._base_key, self._episode, self.np_random
        )
        starts = self._starts
        self._state = (
            starts[0] if len(starts) == 1 else starts[int(rng.uniform(self._episode_key, 0) * len(starts))]
        )
        self._t = 0
        self._return = 0.0
        self._last_action = None
        if self.render_mode == "human":
            self.render()
        return self.encoder.encode_one(self._state), {"state": self._state}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        a = (
            action
            if type(action) is int and 0 <= action < self._n_actions
            else check_action(action, self._n_actions)
        )
        i = self._state * self._n_actions + a
        self._t += 1
        k = 0
        if self._n_outcomes[i] > 1:
            u = rng.uniform(self._episode_key, self._t)
            cdf = self._cdf[i]
            while u >= cdf[k]:
                k += 1
        state = self._next[i][k]
        reward = self._reward[i][k]
        self._state = state
        self._return += reward
        self._last_action = a
        if self.render_mode == "human":
            self.render()
        return self.encoder.encode_one(state), reward, self._terminal[state], False, {"state": state}

    def at_goal(self) -> bool:
        """Whether the agent stands on a goal tile (the episode was a success)."""
        if self._state is None:
            return False
        m = self.model
        return bool(m.layout.tiles[m.state_row[self._state], m.state_col[self._state]] == Tile.GOAL)

    # ----- rendering -----

    def _agent(self) -> tuple[int, int, int]:
        s = self._state if self._state is not None else self._starts[0]
        m = self.model
        return int(m.state_row[s]), int(m.state_col[s]), int(m.state_phase[s])

    def painter(self) -> GridPainter:
        """The painter of display frames (``render_tile_size`` pixels per cell), made on first use."""
        if self._painter is None:
            from envs.grid.painter import GridPainter

            layout = self.model.layout
            self._painter = GridPainter(layout.tiles, layout.ice, self.model.wind, self.render_tile_size)
        return self._painter

    def frame(self) -> np.ndarray:
        """The current frame as an RGB array, without any window."""
        return self.painter().frame(*self._agent())

    def status_lines(self) -> list[str]:
        """A short text status: step, last action, return, and the key/door phase on maps with a key."""
        action = "-" if self._last_action is None else ACTION_NAMES[self._last_action]
        line = f"step {self._t}   action {action}   return {self._return:g}"
        if self.model.n_phases > 1:
            line += ["   key on floor", "   key carried", "   door open"][self._agent()[2]]
        return [line]

    def ansi(self) -> str:
        """The map as text with the agent drawn as ``@``."""
        row, col, phase = self._agent()
        grid = [[TILE_CHAR[Tile(v)] for v in r] for r in self.model.layout.tiles]
        ice = self.model.layout.ice
        for r, c in zip(*np.nonzero(ice & (self.model.layout.tiles == Tile.FLOOR)), strict=True):
            grid[r][c] = "~"
        if phase >= 1:
            for r, c in zip(*np.nonzero(self.model.layout.tiles == Tile.KEY), strict=True):
                grid[r][c] = "."
        if phase == 2:
            for r, c in zip(*np.nonzero(self.model.layout.tiles == Tile.DOOR), strict=True):
                grid[r][c] = "/"
        grid[row][col] = "@"
        return "\n".join("".join(r) for r in grid) + "\n" + self.status_lines()[0] + "\n"

    def window_lines(self) -> list[str]:
        """The status lines under the picture in a ``human`` window."""
        return self.status_lines()
