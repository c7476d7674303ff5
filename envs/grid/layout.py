"""ASCII maps: the tile alphabet, parsing and validation.

A map is a list of equal-length strings, one character per cell::

    #########
    #S..#...#
    #.K.D..G#
    #########

The alphabet is deliberately small; every character means exactly one tile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from envs.errors import MapError

__all__ = ["CHARS", "LEGEND", "Layout", "MapError", "Tile", "parse_map"]


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

    Raises :class:`MapError` naming the problem: an empty map, ragged rows, an unknown character
    (with its row and column), no start, no goal, or more than one key or door.
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
    walkable = tiles != Tile.WALL
    ice = (tiles == Tile.ICE) | (walkable & slippery)
    return Layout(tiles=tiles, ice=ice)
