"""The exact dynamics of a grid world, compiled once into tables.

A state is a walkable cell plus, on maps with a key, the key/door phase:
0 = key on the floor, 1 = key carried, 2 = key carried and door open. States are numbered
``phase * n_cells + cell``, cells in row-major order of the walkable (non-wall) cells.

For every state and action the model lists the possible outcomes (probability, next state,
reward). Both the environments and :meth:`GridModel.transition_model` read these same tables, so
what the environment samples and what a planner computes with cannot disagree.

Movement rules, in order, for one step from a non-terminal state:

1. Slip: on an ice cell the intended move happens with probability ``1 - slip_prob``; otherwise
   the agent moves in one of the two perpendicular directions, ``slip_prob / 2`` each.
2. Move: one cell in the chosen direction, unless the target is outside the grid, a wall, or a
   closed door while the key is not carried (then the agent stays). Walking into the door with the
   key opens it for good.
3. Wind: the wind of the column the agent started in pushes it up that many cells, one at a time,
   stopping at walls and closed doors (Sutton & Barto's windy gridworld). With stochastic wind a
   non-zero push is one cell stronger, exactly as given, or one cell weaker, 1/3 each.
4. The cell where the agent ends decides the reward and the end: a goal pays ``goal_reward`` and
   ends the episode; a pit pays ``pit_reward`` and ends it (or, with ``pit_terminal=False``, sends
   the agent back to the start, as Sutton & Barto's cliff does); stepping on the key picks it up;
   any other step pays ``step_reward``.

Goal and pit states are absorbing: every action keeps the agent there with reward 0.
"""

from __future__ import annotations

import math
import numbers
from collections import defaultdict, deque
from dataclasses import dataclass

import numpy as np

from envs.errors import MapError
from envs.grid.layout import Layout, Tile

# Actions: the four compass moves clockwise from up, then the diagonals (king's moves, with
# ``king_moves=True``) clockwise from up-right.
UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
UP_RIGHT, DOWN_RIGHT, DOWN_LEFT, UP_LEFT = 4, 5, 6, 7
# MOVES[action] is its (row, column) step.
MOVES: tuple[tuple[int, int], ...] = ((-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1))
ACTION_NAMES: tuple[str, ...] = (
    "up",
    "right",
    "down",
    "left",
    "up-right",
    "down-right",
    "down-left",
    "up-left",
)

PHASE_NAMES = ("key on the floor", "key carried", "door open")


@dataclass(frozen=True)
class TransitionModel:
    """An MDP as dense arrays.

    ``P[s, a, s2]`` is the probability of moving to ``s2`` (each ``P[s, a]`` sums to 1),
    ``R[s, a]`` the expected reward, ``terminal[s]`` whether ``s`` ends the episode (absorbing, reward
    0), and ``initial[s]`` the start-state distribution.
    """

    P: np.ndarray
    R: np.ndarray
    terminal: np.ndarray
    initial: np.ndarray

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]

    def reachable(self) -> np.ndarray:
        """A mask of the states that some sequence of actions can visit from the start distribution."""
        return reachable_mask(self.P.sum(axis=1) > 0, self.initial > 0)


def reachable_mask(step: np.ndarray, start: np.ndarray) -> np.ndarray:
    """The states reachable from the ``start`` mask along the edges ``step[s, s2]`` (booleans)."""
    seen = start.copy()
    frontier = seen.copy()
    while frontier.any():
        new = step[frontier].any(axis=0) & ~seen
        seen |= new
        frontier = new
    return seen


@dataclass(frozen=True)
class Dynamics:
    """The rule parameters of a grid world, validated."""

    slip_prob: float = 2.0 / 3.0
    wind: tuple[int, ...] | None = None
    stochastic_wind: bool = False
    king_moves: bool = False
    step_reward: float = 0.0
    goal_reward: float = 1.0
    pit_reward: float = -1.0
    pit_terminal: bool = True

    def validate(self, width: int) -> None:
        if not 0.0 <= self.slip_prob <= 1.0:
            raise MapError(f"slip_prob must lie in [0, 1]; got {self.slip_prob}")
        if self.wind is not None:
            if len(self.wind) != width:
                raise MapError(
                    "wind needs one strength per column: "
                    f"the map has {width} columns, wind has {len(self.wind)}"
                )
            whole = (
                isinstance(w, numbers.Real)
                and not isinstance(w, bool)
                and math.isfinite(w)
                and int(w) == w >= 0
                for w in self.wind
            )
            if not all(whole):
                raise MapError(
                    f"wind strengths are whole numbers >= 0 (cells pushed up); got {list(self.wind)}"
                )
        for name in ("step_reward", "goal_reward", "pit_reward"):
            value = getattr(self, name)
            if not np.isfinite(value):
                raise MapError(f"{name} must be a finite number; got {value}")


class GridModel:
    """A layout and its dynamics compiled into outcome tables.

    Outcome tables are indexed by ``s * n_actions + a`` and padded to the largest outcome count K:
    ``next_state`` (int64), ``reward`` (float64), ``cdf`` (cumulative probabilities, the last real
    entry exactly 1.0, padding 2.0) and ``prob``. An outcome is sampled from a uniform ``u`` in
    [0, 1) as the number of ``cdf`` entries ``<= u``.
    """

    def __init__(self, layout: Layout, dynamics: Dynamics) -> None:
        dynamics.validate(layout.shape[1])
        width = layout.shape[1]
        self.layout = layout
        self.dynamics = dynamics
        tiles = layout.tiles
        self.moves = MOVES if dynamics.king_moves else MOVES[:4]
        self.n_actions = len(self.moves)
        self.wind = (
            np.zeros(width, dtype=np.int64) if dynamics.wind is None else np.asarray(dynamics.wind, np.int64)
        )

        walkable = tiles != Tile.WALL
        self.cell_index = np.full(tiles.shape, -1, dtype=np.int64)
        cell_rows, cell_cols = np.nonzero(walkable)
        self.n_cells = len(cell_rows)
        self.cell_index[cell_rows, cell_cols] = np.arange(self.n_cells)
        self.n_phases = 3 if layout.has_key else 1
        self.n_states = self.n_cells * self.n_phases

        states = np.arange(self.n_states)
        self.state_row = cell_rows[states % self.n_cells]
        self.state_col = cell_cols[states % self.n_cells]
        self.state_phase = states // self.n_cells
        cell_tiles = tiles[self.state_row, self.state_col]
        pits_end = dynamics.pit_terminal
        self.terminal = (cell_tiles == Tile.GOAL) | ((cell_tiles == Tile.PIT) & pits_end)

        starts = self.cell_index[tiles == Tile.START]  # phase 0, row-major order
        self.start_states = starts.astype(np.int64)
        self.initial = np.zeros(self.n_states)
        self.initial[self.start_states] = 1.0 / len(self.start_states)

        outcomes = [self._outcomes(int(s), a) for s in states for a in range(self.n_actions)]
        k = max(len(o) for o in outcomes)
        n = len(outcomes)
        self.next_state = np.zeros((n, k), dtype=np.int64)
        self.reward = np.zeros((n, k), dtype=np.float64)
        self.prob = np.zeros((n, k), dtype=np.float64)
        self.cdf = np.full((n, k), 2.0)
        self.n_outcomes = np.array([len(o) for o in outcomes], dtype=np.int64)
        for i, outs in enumerate(outcomes):
            for j, (p, s2, r) in enumerate(outs):
                self.next_state[i, j], self.reward[i, j], self.prob[i, j] = s2, r, p
            self.cdf[i, : len(outs)] = np.cumsum([p for p, _, _ in outs])
            self.cdf[i, len(outs) - 1] = 1.0
            self.next_state[i, len(outs) :] = self.next_state[i, 0]
        self._check_goal_reachable()

    # ----- building -----

    def state_of(self, row: int, col: int, phase: int = 0) -> int:
        """The state index of a walkable cell in a given key/door phase."""
        cell = int(self.cell_index[row, col])
        if cell < 0 or not 0 <= phase < self.n_phases:
            raise MapError(f"({row}, {col}) in phase {phase} is not a state of this map")
        return phase * self.n_cells + cell

    def _passable(self, row: int, col: int, phase: int) -> bool:
        height, width = self.layout.shape
        if not (0 <= row < height and 0 <= col < width):
            return False
        tile = self.layout.tiles[row, col]
        return tile != Tile.WALL and (tile != Tile.DOOR or phase >= 1)

    def _outcomes(self, s: int, a: int) -> list[tuple[float, int, float]]:
        """(probability, next state, reward) for action ``a`` in state ``s``, duplicates merged."""
        if self.terminal[s]:
            return [(1.0, s, 0.0)]
        row, col, phase = int(self.state_row[s]), int(self.state_col[s]), int(self.state_phase[s])
        dyn = self.dynamics
        dr, dc = self.moves[a]
        moves = [(1.0, (dr, dc))]
        if self.layout.ice[row, col] and dyn.slip_prob > 0:
            side = dyn.slip_prob / 2.0
            moves = [(1.0 - dyn.slip_prob, (dr, dc)), (side, (dc, -dr)), (side, (-dc, dr))]
        strength = int(self.wind[col])
        pushes = [(1.0, strength)]
        if dyn.stochastic_wind and strength > 0:
            pushes = [(1.0 / 3.0, strength + 1), (1.0 / 3.0, strength), (1.0 / 3.0, strength - 1)]

        merged: dict[tuple[int, float], float] = defaultdict(float)
        for p_move, (mr, mc) in moves:
            if p_move == 0.0:
                continue
            r, c, ph = row, col, phase
            if self._passable(r + mr, c + mc, ph):
                r, c = r + mr, c + mc
                if self.layout.tiles[r, c] == Tile.DOOR and ph == 1:
                    ph = 2
            for p_push, push in pushes:
                wr = r
                for _ in range(push):
                    if not self._passable(wr - 1, c, ph):
                        break
                    wr -= 1
                for p, s2, reward in self._land(wr, c, ph):
                    merged[(s2, reward)] += p_move * p_push * p
        return [(p, s2, reward) for (s2, reward), p in merged.items()]

    def _land(self, row: int, col: int, phase: int) -> list[tuple[float, int, float]]:
        """What ending a move on (row, col) means: (probability, next state, reward)."""
        dyn = self.dynamics
        tile = self.layout.tiles[row, col]
        if tile == Tile.KEY and phase == 0:
            phase = 1
        if tile == Tile.GOAL:
            return [(1.0, self.state_of(row, col, phase), dyn.goal_reward)]
        if tile == Tile.PIT:
            if dyn.pit_terminal:
                return [(1.0, self.state_of(row, col, phase), dyn.pit_reward)]
            share = 1.0 / len(self.start_states)
            return [(share, int(s) + phase * self.n_cells, dyn.pit_reward) for s in self.start_states]
        return [(1.0, self.state_of(row, col, phase), dyn.step_reward)]

    def _check_goal_reachable(self) -> None:
        seen = np.zeros(self.n_states, dtype=bool)
        seen[self.start_states] = True
        queue = deque(int(s) for s in self.start_states)
        goal = self.layout.tiles[self.state_row, self.state_col] == Tile.GOAL
        while queue:
            s = queue.popleft()
            if goal[s]:
                return
            rows = slice(s * self.n_actions, (s + 1) * self.n_actions)
            for s2 in np.unique(self.next_state[rows][self.prob[rows] > 0]):
                if not seen[s2]:
                    seen[s2] = True
                    queue.append(int(s2))
        raise MapError("no goal can be reached from the start: walls, pits or a locked door cut it off")

    # ----- reading -----

    def transition_model(self) -> TransitionModel:
        """Dense ``P[S, A, S']``, expected rewards ``R[S, A]``, terminal flags and start distribution."""
        n, a = self.n_states, self.n_actions
        P = np.zeros((n * a, n))
        rows = np.repeat(np.arange(n * a), self.next_state.shape[1])
        np.add.at(P, (rows, self.next_state.ravel()), self.prob.ravel())
        R = (self.prob * self.reward).sum(axis=1).reshape(n, a)
        return TransitionModel(
            P=P.reshape(n, a, n), R=R, terminal=self.terminal.copy(), initial=self.initial.copy()
        )
