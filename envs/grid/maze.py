"""Procedural perfect mazes (exactly one path between any two cells) by randomized depth-first search."""

from __future__ import annotations

import numpy as np

from envs.errors import MapError
from envs.grid.layout import check_cells


def generate_maze(size: int, maze_seed: int = 0) -> list[str]:
    """An ASCII maze ``size`` x ``size`` (odd, >= 5): start top-left, goal bottom-right, always solvable.

    Rooms sit on odd coordinates; the recursive backtracker knocks down walls between them, so
    every room is connected to every other and the goal is always reachable. The same
    ``maze_seed`` gives the same maze on every machine (numpy's PCG64 stream is stable).
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 5 or size % 2 == 0:
        raise MapError(f"maze size must be an odd integer >= 5; got {size!r}")
    check_cells(int(size), int(size))  # before the walk: a size read from a file must stay small
    if isinstance(maze_seed, bool) or not isinstance(maze_seed, (int, np.integer)) or maze_seed < 0:
        raise MapError(f"maze_seed must be an integer >= 0; got {maze_seed!r}")
    rng = np.random.default_rng(int(maze_seed))
    grid = np.full((size, size), "#")
    rooms = (size - 1) // 2
    visited = np.zeros((rooms, rooms), dtype=bool)
    visited[0, 0] = True
    grid[1, 1] = "."
    stack = [(0, 0)]
    while stack:
        r, c = stack[-1]
        options = [
            (r + dr, c + dc)
            for dr, dc in ((-1, 0), (0, 1), (1, 0), (0, -1))
            if 0 <= r + dr < rooms and 0 <= c + dc < rooms and not visited[r + dr, c + dc]
        ]
        if not options:
            stack.pop()
            continue
        nr, nc = options[int(rng.integers(len(options)))]
        visited[nr, nc] = True
        grid[2 * nr + 1, 2 * nc + 1] = "."
        grid[r + nr + 1, c + nc + 1] = "."  # the wall between the two rooms
        stack.append((nr, nc))
    grid[1, 1] = "S"
    grid[size - 2, size - 2] = "G"
    return ["".join(row) for row in grid]
