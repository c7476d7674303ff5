"""Boards of the ``themes`` translation data set: small states of the lab's grid worlds.

A board is ``rows`` x ``cols`` cells, each one of :data:`KIND_NAMES`. Its cells are *not* drawn
independently: under independent cells any permutation of kinds with equal frequencies (key and
goal, the two doors) leaves the image distribution exactly unchanged, so no unpaired loss can tell
the right translation from a permuted one. The boards follow the worlds' rules
(:mod:`envs.grid.layout`) instead, which tie every kind to a count or a place:

- exactly one start and one goal, and exactly one agent, on a floor, ice or start cell;
- with probability ``WALL_LINE``, a wall across the board (a whole inner row or column) with a
  door in it, the start on one side and the goal on the other, as in KeyDoor: a closed door with
  the key on the start's side (phase 0: the agent is on that side too) or an open door with no
  key (phase 2: the key was used);
- pits in one cluster of 1-2 cells and ice in one cluster of 2-4 (each with its own probability);
- the agent on the start with probability ``ON_START`` (where every episode begins), else on the
  ice with probability ``ON_ICE`` when there is ice, else on any floor, ice or start cell.

Without its agent and with the used key put back, every board is a valid map (``parse_map``).
"""

from __future__ import annotations

import numpy as np

from lab.core.errors import LabError

# The cell kinds a board is made of: (tile, ice, phase, agent) as the painters take them.
CELL_KINDS: dict[str, tuple[int, bool, int, bool]] = {
    "floor": (0, False, 0, False),
    "wall": (1, False, 0, False),
    "start": (2, False, 0, False),
    "goal": (3, False, 0, False),
    "pit": (4, False, 0, False),
    "ice": (0, True, 0, False),
    "key": (6, False, 0, False),
    "door closed": (7, False, 1, False),
    "door open": (7, False, 2, False),
    "agent": (0, False, 0, True),
    "agent on ice": (0, True, 0, True),
    "agent on start": (2, False, 0, True),
}
KIND_NAMES = list(CELL_KINDS)
FLOOR, WALL, START, GOAL, PIT, ICE, KEY, CLOSED, OPEN, AGENT, AGENT_ICE, AGENT_START = range(len(KIND_NAMES))
AGENT_ON = {FLOOR: AGENT, ICE: AGENT_ICE, START: AGENT_START}  # the kind under the agent -> with it

WALL_LINE = 0.7  # a board has a dividing wall
DOOR_CLOSED = 0.6  # its door is closed (and the key lies on the start's side), else open
PITS, ICE_SHEET = 0.6, 0.7  # a board has a pit cluster, an ice cluster
PIT_SIZES, ICE_SIZES = (1, 2), (2, 3, 4)
ON_START, ON_ICE = 0.25, 0.35


def _pick(mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int] | None:
    """A uniformly drawn cell of ``mask``, or None when it is empty."""
    cells = np.argwhere(mask)
    return None if len(cells) == 0 else tuple(cells[rng.integers(len(cells))])


def _cluster(grid: np.ndarray, free: np.ndarray, kind: int, size: int, rng: np.random.Generator) -> None:
    """Up to ``size`` connected cells of ``kind`` on ``free`` cells, grown from a random one."""
    cell = _pick(free, rng)
    grown = np.zeros_like(free)
    while cell is not None and grown.sum() < size:
        grown[cell] = True
        near = np.zeros_like(free)
        near[1:] |= grown[:-1]
        near[:-1] |= grown[1:]
        near[:, 1:] |= grown[:, :-1]
        near[:, :-1] |= grown[:, 1:]
        cell = _pick(near & free & ~grown, rng)
    grid[grown] = kind


def world_board(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """One board ``(rows, cols)`` of kinds by the rules above."""
    grid = np.full((rows, cols), FLOOR)
    start_side = goal_side = np.ones((rows, cols), dtype=bool)
    closed = False
    axes = [axis for axis, n in enumerate((rows, cols)) if n >= 3]
    if axes and rng.random() < WALL_LINE:
        axis = axes[rng.integers(len(axes))]
        position = np.indices((rows, cols))[axis]
        line = int(rng.integers(1, grid.shape[axis] - 1))
        grid[position == line] = WALL
        before = position < line
        start_side, goal_side = (before, position > line) if rng.random() < 0.5 else (position > line, before)
        closed = rng.random() < DOOR_CLOSED
        grid[_pick(position == line, rng)] = CLOSED if closed else OPEN
    free = grid == FLOOR
    for kind, side in ((START, start_side), (GOAL, goal_side), *(((KEY, start_side),) if closed else ())):
        cell = _pick(free & side, rng)
        if cell is None:
            raise LabError(f"a {rows}x{cols} board has no room for a start, a goal and a key; make it larger")
        grid[cell] = kind
        free[cell] = False
    for chance, kind, sizes in ((PITS, PIT, PIT_SIZES), (ICE_SHEET, ICE, ICE_SIZES)):
        if rng.random() < chance:
            _cluster(grid, grid == FLOOR, kind, int(rng.choice(sizes)), rng)
    stand = np.isin(grid, list(AGENT_ON)) & (start_side if closed else True)
    u = rng.random()
    if u < ON_START:
        stand &= grid == START
    elif u < ON_START + ON_ICE and (stand & (grid == ICE)).any():
        stand &= grid == ICE
    cell = _pick(stand, rng)
    if cell is None:
        raise LabError(f"a {rows}x{cols} board has no room for the agent; make it larger")
    grid[cell] = AGENT_ON[int(grid[cell])]
    return grid


def world_boards(n: int, rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct boards ``(n, rows*cols)`` by :func:`world_board`, in the order drawn."""
    found: dict[bytes, np.ndarray] = {}
    misses = 0
    while misses < 1000:  # a thousand draws in a row found nothing new: the board is too small
        board = world_board(rows, cols, rng).reshape(-1)
        misses = misses + 1 if board.tobytes() in found else 0
        found.setdefault(board.tobytes(), board)
        if len(found) == n:
            return np.stack(list(found.values()))
    raise LabError(f"a {rows}x{cols} board has too few distinct states for {n} images; ask for fewer")
