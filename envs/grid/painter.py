"""Procedural pixel art for grid worlds, drawn with numpy alone.

Every tile is built from signed-distance shapes on a coordinate grid, so the same code draws crisp
8-pixel observation tiles and large display tiles. A :class:`GridPainter` caches one background per
key/door phase plus a copy with the agent drawn in every cell, so a frame is a background copy with
one tile pasted from that copy, and a batch of frames is two fancy-indexing operations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from envs.errors import EnvError
from envs.grid.layout import Tile

MAX_FRAME_SIDE = 4096
"""The longest side of a frame in pixels (the largest map at the smallest display tile fits)."""

PHASES = 3

FLOOR = (236, 239, 243)
GRID = (206, 212, 222)
START = (122, 139, 168)
WALL = (52, 61, 79)
WALL_FACE = (63, 73, 93)
ICE = (196, 228, 247)
ICE_EDGE = (168, 207, 234)
GLINT = (255, 255, 255)
WIND = (84, 104, 138)
GOAL = (72, 176, 110)
GOAL_DARK = (44, 128, 76)
FLAG = (255, 255, 255)
POLE = (34, 84, 52)
PIT_CORE = (24, 16, 22)
PIT_DEEP = (122, 30, 22)
PIT_RIM = (240, 108, 44)
KEY = (246, 192, 46)
KEY_DARK = (168, 116, 20)
DOOR = (156, 100, 58)
DOOR_DARK = (96, 58, 32)
DOOR_PLANK = (138, 86, 48)
KEYHOLE = (40, 26, 18)
AGENT = (52, 102, 236)
AGENT_DARK = (22, 46, 122)
AGENT_SHINE = (150, 184, 255)

Sdf = np.ndarray


class _Canvas:
    """One float RGB tile with coordinates in tile units, painted by signed-distance coverage."""

    def __init__(self, size: int, colour: tuple[int, int, int]) -> None:
        self.size = size
        centres = (np.arange(size) + 0.5) / size
        self.y, self.x = np.meshgrid(centres, centres, indexing="ij")
        self.rgb = np.empty((size, size, 3))
        self.rgb[:] = colour

    def coverage(self, sdf: Sdf) -> np.ndarray:
        return np.clip(0.5 - sdf * self.size, 0.0, 1.0)

    def paint(self, sdf: Sdf, colour: tuple[int, int, int], alpha: float = 1.0) -> None:
        a = (self.coverage(sdf) * alpha)[..., None]
        self.rgb = self.rgb * (1.0 - a) + np.asarray(colour, dtype=float) * a

    def width(self, w: float) -> float:
        """A stroke width in tile units, at least one pixel wide."""
        return max(w, 1.0 / self.size)

    def circle(self, cx: float, cy: float, r: float) -> Sdf:
        return np.hypot(self.x - cx, self.y - cy) - r

    def ring(self, cx: float, cy: float, r: float, w: float) -> Sdf:
        return np.abs(self.circle(cx, cy, r)) - w / 2

    def box(self, x0: float, y0: float, x1: float, y1: float, radius: float = 0.0) -> Sdf:
        hx, hy = (x1 - x0) / 2 - radius, (y1 - y0) / 2 - radius
        qx = np.abs(self.x - (x0 + x1) / 2) - hx
        qy = np.abs(self.y - (y0 + y1) / 2) - hy
        outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
        return outside + np.minimum(np.maximum(qx, qy), 0.0) - radius

    def segment(self, ax: float, ay: float, bx: float, by: float, w: float) -> Sdf:
        px, py, dx, dy = self.x - ax, self.y - ay, bx - ax, by - ay
        h = np.clip((px * dx + py * dy) / (dx * dx + dy * dy), 0.0, 1.0)
        return np.hypot(px - h * dx, py - h * dy) - w / 2

    def polygon(self, points: list[tuple[float, float]]) -> Sdf:
        """A convex polygon, in either winding: the max of its edge half-planes."""
        edges = list(zip(points, points[1:] + points[:1], strict=True))
        winding = np.sign(sum(ax * by - bx * ay for (ax, ay), (bx, by) in edges))
        sdf = np.full_like(self.x, -np.inf)
        for (ax, ay), (bx, by) in edges:
            nx, ny = (by - ay) * winding, (ax - bx) * winding
            norm = np.hypot(nx, ny)
            sdf = np.maximum(sdf, ((self.x - ax) * nx + (self.y - ay) * ny) / norm)
        return sdf


def _ice(c: _Canvas) -> None:
    c.paint(c.box(0, 0, 1, 1), ICE)
    c.paint(c.box(0.04, 0.04, 0.96, 0.96, 0.12), ICE_EDGE, 0.35)
    glint = c.width(0.06)
    c.paint(c.segment(0.2, 0.5, 0.5, 0.2, glint), GLINT, 0.9)
    c.paint(c.segment(0.55, 0.8, 0.8, 0.55, glint), GLINT, 0.9)
    c.paint(c.segment(0.3, 0.62, 0.42, 0.5, glint), GLINT, 0.6)


def _grid_lines(c: _Canvas) -> None:
    w = c.width(0.03)
    edge = np.maximum(c.x, c.y) - (1 - w)
    c.paint(-edge, GRID)


def _wind(c: _Canvas, strength: int) -> None:
    if strength <= 0:
        return
    n = min(strength, 3)
    alpha = (0.22, 0.34, 0.44)[n - 1]
    w = c.width(0.07)
    step = 0.2
    for k in range(n):
        y = 0.5 + (k - (n - 1) / 2) * step + 0.08
        sdf = np.minimum(c.segment(0.3, y, 0.5, y - 0.16, w), c.segment(0.5, y - 0.16, 0.7, y, w))
        c.paint(sdf, WIND, alpha)


def _start(c: _Canvas) -> None:
    c.paint(c.ring(0.5, 0.5, 0.3, c.width(0.06)), START, 0.7)
    c.paint(c.circle(0.5, 0.5, 0.07), START, 0.7)


def _goal(c: _Canvas) -> None:
    c.paint(c.box(0.08, 0.08, 0.92, 0.92, 0.14), GOAL)
    c.paint(c.segment(0.36, 0.24, 0.36, 0.8, c.width(0.07)), POLE)
    c.paint(c.polygon([(0.39, 0.2), (0.39, 0.56), (0.76, 0.38)]), FLAG)
    c.paint(c.segment(0.26, 0.8, 0.48, 0.8, c.width(0.06)), POLE)


def _pit(c: _Canvas) -> None:
    rim = c.box(0.1, 0.1, 0.9, 0.9, 0.3)
    c.paint(rim, PIT_RIM)
    inner = c.box(0.17, 0.17, 0.83, 0.83, 0.24)
    depth = np.clip(np.hypot(c.x - 0.5, c.y - 0.5) / 0.42, 0.0, 1.0)[..., None] ** 1.5
    hole = PIT_CORE + (np.asarray(PIT_DEEP) - PIT_CORE) * depth
    a = c.coverage(inner)[..., None]
    c.rgb = c.rgb * (1 - a) + hole * a


def _key(c: _Canvas, x: float = 0.0, y: float = 0.0, s: float = 1.0) -> None:
    """The key, in the unit cell moved by (``x``, ``y``) and shrunk ``s`` times (a badge when small)."""
    w = 0.1 * s
    shape = np.minimum.reduce(
        [
            c.ring(x + 0.3 * s, y + 0.5 * s, 0.13 * s, w),
            c.segment(x + 0.42 * s, y + 0.5 * s, x + 0.84 * s, y + 0.5 * s, w),
            c.segment(x + 0.7 * s, y + 0.5 * s, x + 0.7 * s, y + 0.66 * s, w),
            c.segment(x + 0.82 * s, y + 0.5 * s, x + 0.82 * s, y + 0.62 * s, w),
        ]
    )
    c.paint(shape - c.width(0.04 * s), KEY_DARK)
    c.paint(shape, KEY)


def _key_badge(c: _Canvas) -> None:
    """A small key at the agent's lower right: it carries the key."""
    c.paint(c.circle(0.76, 0.76, 0.2), AGENT_DARK)
    _key(c, 0.56, 0.5, 0.42)


def _door_closed(c: _Canvas) -> None:
    c.paint(c.box(0.06, 0.02, 0.94, 1.0, 0.06), DOOR_DARK)
    c.paint(c.box(0.14, 0.1, 0.86, 1.0, 0.04), DOOR)
    for x in (0.38, 0.62):
        c.paint(c.segment(x, 0.14, x, 0.96, c.width(0.03)), DOOR_PLANK)
    c.paint(c.circle(0.5, 0.5, 0.08), KEYHOLE)
    c.paint(c.polygon([(0.46, 0.52), (0.42, 0.72), (0.58, 0.72), (0.54, 0.52)]), KEYHOLE)


def _door_open(c: _Canvas) -> None:
    frame = c.width(0.09)
    outline = np.abs(c.box(0.06, 0.02, 0.94, 1.1, 0.06)) - frame / 2
    c.paint(np.maximum(outline, c.y - 1.0), DOOR_DARK)
    c.paint(c.polygon([(0.1, 0.06), (0.1, 1.0), (0.3, 0.9), (0.3, 0.16)]), DOOR)
    c.paint(c.segment(0.25, 0.5, 0.25, 0.56, c.width(0.05)), KEYHOLE)


def _agent(c: _Canvas) -> None:
    body = c.circle(0.5, 0.5, 0.35)
    c.paint(body, AGENT_DARK)
    c.paint(body + c.width(0.07), AGENT)
    c.paint(c.circle(0.4, 0.39, 0.09), AGENT_SHINE, 0.8)


_FEATURES: dict[int, Callable[[_Canvas], None]] = {
    Tile.START: _start,
    Tile.GOAL: _goal,
    Tile.PIT: _pit,
}


def draw_cell(
    size: int, tile: int, ice: bool, wind: int, phase: int, agent: bool, carrying: bool = False
) -> np.ndarray:
    """The classic theme's ``(size, size, 3)`` uint8 image of one cell (``phase`` already per tile;
    ``carrying``: the agent holds the key and wears a badge)."""
    c = _Canvas(size, FLOOR)
    if tile == Tile.WALL:
        c.paint(c.box(0, 0, 1, 1), WALL)
        c.paint(c.box(0.06, 0.06, 0.94, 0.88, 0.08), WALL_FACE)
    else:
        if ice:
            _ice(c)
        _grid_lines(c)
        _wind(c, wind)
        if tile in _FEATURES:
            _FEATURES[tile](c)
        elif tile == Tile.KEY and phase == 0:
            _key(c)
        elif tile == Tile.DOOR:
            (_door_open if phase == 2 else _door_closed)(c)
    if agent:
        _agent(c)
    if carrying:
        _key_badge(c)
    return np.round(c.rgb).clip(0, 255).astype(np.uint8)


def check_tile_size(tile_size: Any, shape: tuple[int, int]) -> None:
    """Pixels per cell (``obs_tile_size``, ``render_tile_size``): a whole number >= 4 that keeps a
    frame of a ``shape`` (rows, columns) map within :data:`MAX_FRAME_SIDE` pixels a side."""
    h, w = shape
    if isinstance(tile_size, bool) or not isinstance(tile_size, (int, np.integer)) or tile_size < 4:
        raise EnvError(
            f"tile_size (obs_tile_size, render_tile_size) must be a whole number >= 4; got {tile_size!r}"
        )
    if max(h, w) * tile_size > MAX_FRAME_SIDE:  # a size read from a file must not ask for gigabytes
        raise EnvError(
            f"{tile_size} pixels per cell make a {h * tile_size} x {w * tile_size} frame; "
            f"frames are at most {MAX_FRAME_SIDE} pixels on a side"
        )


class GridPainter:
    """Draws a grid world's frames.

    ``phase`` is the key/door state: 0 the key lies on its tile and the door is closed, 1 the key is
    carried (the agent wears a key badge) and the door still closed, 2 the door is open.
    """

    def __init__(
        self, tiles: np.ndarray, ice: np.ndarray, wind: np.ndarray, tile_size: int, theme: str = "classic"
    ) -> None:
        from envs.grid.themes import cell_drawer

        self._paint_cell = cell_drawer(theme)  # checks the theme name first
        tiles = np.asarray(tiles, dtype=np.uint8)
        ice = np.asarray(ice, dtype=bool)
        wind = np.asarray(wind, dtype=np.int64)
        if tiles.ndim != 2 or ice.shape != tiles.shape or wind.shape != (tiles.shape[1],):
            shapes = f"{tiles.shape}, {ice.shape}, {wind.shape}"
            raise ValueError(f"tiles must be (H, W), ice (H, W) and wind (W,); got {shapes}")
        h, w = tiles.shape
        check_tile_size(tile_size, (h, w))
        self.tile_size = int(tile_size)
        self.shape: tuple[int, int] = (h * self.tile_size, w * self.tile_size)
        self._tiles, self._ice, self._wind = tiles, ice, wind
        self._cells: dict[tuple[int, bool, int, int, bool, bool], np.ndarray] = {}
        self._bg = np.empty((PHASES, *self.shape, 3), dtype=np.uint8)
        self._fg = np.empty_like(self._bg)
        self._drawn = np.zeros(PHASES, dtype=bool)

    def _cell(self, tile: int, ice: bool, wind: int, phase: int, agent: bool) -> np.ndarray:
        """The (t, t, 3) uint8 image of one cell, with or without the agent."""
        carrying = agent and phase == 1
        if tile == Tile.KEY:
            phase = min(phase, 1)
        elif tile == Tile.DOOR:
            phase = max(phase, 1)
        else:
            phase = 0
        key = (tile, ice, wind, phase, agent, carrying)
        if key not in self._cells:
            self._cells[key] = self._paint_cell(self.tile_size, tile, ice, wind, phase, agent, carrying)
        return self._cells[key]

    def _draw(self, phase: int) -> None:
        if not 0 <= phase < PHASES:
            raise ValueError(f"phase must be 0, 1 or 2; got {phase}")
        t = self.tile_size
        h, w = self._tiles.shape
        for r in range(h):
            for col in range(w):
                args = (int(self._tiles[r, col]), bool(self._ice[r, col]), int(self._wind[col]), phase)
                block = (slice(r * t, (r + 1) * t), slice(col * t, (col + 1) * t))
                self._bg[(phase, *block)] = self._cell(*args, agent=False)
                self._fg[(phase, *block)] = self._cell(*args, agent=True)
        self._drawn[phase] = True

    def _ready(self) -> None:
        for phase in np.flatnonzero(~self._drawn):
            self._draw(int(phase))

    def background(self, phase: int) -> np.ndarray:
        """The ``(H*t, W*t, 3)`` uint8 background for ``phase``; cached and read-only, so copy to edit."""
        phase = int(phase)
        if not (0 <= phase < PHASES and self._drawn[phase]):
            self._draw(phase)
        view = self._bg[phase]
        view.flags.writeable = False
        return view

    def frame(self, row: int, col: int, phase: int) -> np.ndarray:
        """A new ``(H*t, W*t, 3)`` uint8 frame: the background with the agent at ``(row, col)``."""
        h, w = self._tiles.shape
        if not (0 <= row < h and 0 <= col < w):
            raise IndexError(f"cell ({row}, {col}) is outside the {h}x{w} grid")
        out = self.background(phase).copy()
        t = self.tile_size
        block = (slice(row * t, (row + 1) * t), slice(col * t, (col + 1) * t))
        out[block] = self._fg[(int(phase), *block)]
        return out

    def frames(self, rows: np.ndarray, cols: np.ndarray, phases: np.ndarray) -> np.ndarray:
        """A new ``(N, H*t, W*t, 3)`` uint8 batch; item ``i`` is ``frame(rows[i], cols[i], phases[i])``."""
        self._ready()
        rows, cols, phases = (np.asarray(a, dtype=np.intp).reshape(-1) for a in (rows, cols, phases))
        t = self.tile_size
        h, w = self._tiles.shape
        out = self._bg.take(phases, axis=0)
        blocks = out.reshape(len(phases), h, t, w, t, 3)
        fg = self._fg.reshape(PHASES, h, t, w, t, 3)
        blocks[np.arange(len(phases)), rows, :, cols] = fg[phases, rows, :, cols]
        return out
