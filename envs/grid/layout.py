"""ASCII maps: the tile alphabet, parsing and validation.

A map is a list of equal-length strings, one character per cell::

    #########
    #S..#...#
    #.K.D..G#
    #########

The alphabet is deliberately small; every character means exactly one tile. The rules a map follows:

- at least one start 'S' and one goal 'G'; with several starts, each episode begins on one of them,
  chosen uniformly at random (several goals: reaching any ends the episode);
- at most one key 'K' and one door 'D', and never one without the other (a key that opens nothing,
  or a door no key opens, is a mistake in the map);
- border walls are optional: the edge of the grid blocks moves as a wall does (IceLake has none);
- at most :data:`MAX_CELLS` cells, so a map (or a maze ``size``) read from a file cannot ask for
  gigabytes of tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from envs.errors import MapError

__all__ = ["CHARS", "LEGEND", "MAX_CELLS", "Layout", "MapError", "Tile", "check_cells", "parse_map"]

MAX_CELLS = 65_536
"""The most cells a map may have (256 x 256): the model's tables grow with it."""


def check_cells(height: int, width: int) -> None:
    """Refuse a map of ``height`` x ``width`` cells when it has more than :data:`MAX_CELLS`."""
    if height * width > MAX_CELLS:
        raise MapError(
            f"a {height} x {width} map has {height * width} cells; the grid worlds take at most {MAX_CELLS}"
        )


class Tile(IntEnum):
    """What a cell is. The values are stable: symbolic observations and saved files use them."""

    FLOOR = 0
    WALL = 1
    START = 2
    GOAL = 3
    PIT = 4
    ICE = 5
    KEY = 6
    DOOR = 7


CHARS: dict[str, Tile] = {
    ".": Tile.FLOOR,
    "#": Tile.WALL,
    "S": Tile.START,
    "G": Tile.GOAL,
    "H": Tile.PIT,
    "~": Tile.ICE,
    "K": Tile.KEY,
    "D": Tile.DOOR,
}
TILE_CHAR: dict[Tile, str] = {tile: char for char, tile in CHARS.items()}

LEGEND = ", ".join(f"'{c}' {t.name.lower()}" for c, t in CHARS.items())


@dataclass(frozen=True)
class Layout:
    """A parsed, validated map.

    ``tiles`` is an ``(H, W)`` uint8 array of :class:`Tile` values; ``ice`` marks the cells where
    moves slip (ice tiles, or every walkable cell of a slippery world).
    """

    tiles: np.ndarray
    ice: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.tiles.shape  # type: ignore[return-value]

    @property
    def has_key(self) -> bool:
        return bool((self.tiles == Tile.KEY).any())

    def rows(self) -> list[str]:
        """The map back as text (the inverse of :func:`parse_map`)."""
        return ["".join(TILE_CHAR[Tile(v)] for v in row) for row in self.tiles]


def parse_map(rows: Sequence[str] | str, *, slippery: bool = False) -> Layout:
    """Parse and validate an ASCII map.

    ``rows`` is a sequence of strings, or one string with a row per line. With ``slippery=True``
    every walkable cell is ice, as in FrozenLake's ``is_slippery``.

    Raises :class:`MapError` naming the problem: an empty or oversized map, ragged rows, an unknown
    character (with its row and column), no start, no goal, more than one key or door, or a key
    without a door (or the reverse). See the module docstring for the rules.
    """
    if isinstance(rows, str):
        rows = [line.strip() for line in rows.strip().splitlines()]
    if isinstance(rows, np.ndarray):
        rows = ["".join(r.astype(str)) if r.ndim else str(r) for r in rows]
    if not isinstance(rows, Sequence) or not all(isinstance(r, str) for r in rows):
        raise MapError(f"a map is a list of strings, one per row; got {type(rows).__name__}")
    if len(rows) == 0 or all(len(r) == 0 for r in rows):
        raise MapError("the map is empty")
    width = len(rows[0])
    check_cells(len(rows), width)
    for i, row in enumerate(rows):
        if len(row) != width:
            raise MapError(
                f"ragged map: row {i} has {len(row)} cells but row 0 has {width}; every row must be as wide"
            )
        for j, char in enumerate(row):
            if char not in CHARS:
                raise MapError(
                    f"unknown map character {char!r} at row {i}, column {j}; valid tiles: {LEGEND}"
                )
    tiles = np.array([[CHARS[c] for c in row] for row in rows], dtype=np.uint8)
    counts = {tile: int((tiles == tile).sum()) for tile in Tile}
    if counts[Tile.START] == 0:
        raise MapError("the map has no start: mark at least one cell 'S'")
    if counts[Tile.GOAL] == 0:
        raise MapError("the map has no goal: mark at least one cell 'G'")
    if counts[Tile.KEY] > 1 or counts[Tile.DOOR] > 1:
        raise MapError("a map holds at most one key 'K' and one door 'D'")
    if counts[Tile.DOOR] and not counts[Tile.KEY]:
        raise MapError("the map has a door 'D' but no key 'K' to open it")
    if counts[Tile.KEY] and not counts[Tile.DOOR]:
        raise MapError("the map has a key 'K' but no door 'D' for it to open: add a door or remove the key")
    walkable = tiles != Tile.WALL
    ice = (tiles == Tile.ICE) | (walkable & slippery)
    return Layout(tiles=tiles, ice=ice)
