"""Rendering themes for grid worlds: the same cell drawn in different styles.

``classic`` is :func:`envs.grid.painter.draw_cell` (light floor, solid tiles, a round blue agent).
``blueprint`` is a second, procedurally drawn style on the same signed-distance canvas: a dark
navy sheet, tiles of other shapes and outlines (hatched walls, a crossed pit, a solid diamond
goal, a cyan ice sheet with glints, a square-bowed key, a barred door that opens to an empty
frame), the agent a blue triangle. Each thing keeps its classic hue (goal green, pit orange, key gold, agent
blue) and roughly its weight (solid goal and closed door, a thin open door), while floor and
walls swap light for dark: a re-skin, as a game's night mode would be. Both themes are
deterministic, so an image in either decodes exactly back to its cells, which is what lets image
translation between them be scored against the truth.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from envs.errors import EnvError
from envs.grid.layout import Tile

CellDrawer = Callable[[int, int, bool, int, int, bool, bool], np.ndarray]
"""``draw(size, tile, ice, wind, phase, agent, carrying) -> (size, size, 3) uint8``."""

THEMES = ("classic", "blueprint")

SHEET = (18, 32, 64)
SHEET_LINE = (40, 64, 112)
WALL_LINE = (150, 176, 214)
WALL_HATCH = (88, 112, 156)
START_LINE = (150, 160, 182)
GOAL_LINE = (96, 232, 130)
PIT_LINE = (255, 112, 52)
ICE_SHEET = (46, 98, 140)
ICE_GLINT = (170, 240, 255)
WIND_LINE = (96, 132, 190)
KEY_LINE = (255, 214, 64)
DOOR_LINE = (214, 140, 78)
AGENT_FILL = (86, 146, 255)
AGENT_EDGE = (206, 226, 255)


def _blueprint(
    size: int, tile: int, ice: bool, wind: int, phase: int, agent: bool, carrying: bool = False
) -> np.ndarray:
    from envs.grid.painter import _Canvas

    c = _Canvas(size, SHEET)
    w = c.width(0.1)
    if tile == Tile.WALL:
        c.paint(c.box(0, 0, 1, 1), WALL_HATCH)
        c.paint(c.box(0.12, 0.12, 0.88, 0.88), SHEET)
        c.paint(c.segment(0.12, 0.88, 0.88, 0.12, w), WALL_LINE)
    else:
        if ice:  # a lighter, cyan sheet with two glints: visible at 8 pixels a tile, agent or not
            c.paint(c.box(0, 0, 1, 1), ICE_SHEET)
            c.paint(c.segment(0.15, 0.45, 0.45, 0.15, w), ICE_GLINT, 0.8)
            c.paint(c.segment(0.55, 0.85, 0.85, 0.55, w), ICE_GLINT, 0.8)
        edge = np.minimum(c.x, c.y) - c.width(0.04)  # outline on the top and left edges
        c.paint(edge, SHEET_LINE)
        for k in range(min(max(wind, 0), 3)):
            x = 0.2 + 0.3 * k
            c.paint(c.segment(x, 0.85, x, 0.55, c.width(0.06)), WIND_LINE)
        if tile == Tile.START:
            c.paint(np.abs(c.box(0.2, 0.2, 0.8, 0.8)) - w / 2, START_LINE)
        elif tile == Tile.GOAL:
            diamond = c.polygon([(0.5, 0.1), (0.9, 0.5), (0.5, 0.9), (0.1, 0.5)])
            c.paint(diamond, GOAL_LINE)
            c.paint(c.circle(0.5, 0.5, 0.1), SHEET)
        elif tile == Tile.PIT:
            cross = np.minimum(c.segment(0.15, 0.15, 0.85, 0.85, w), c.segment(0.15, 0.85, 0.85, 0.15, w))
            c.paint(cross, PIT_LINE)
        elif tile == Tile.KEY and phase == 0:
            bow = np.abs(c.box(0.12, 0.35, 0.42, 0.65)) - w / 2
            c.paint(np.minimum(bow, c.segment(0.42, 0.5, 0.88, 0.5, w)), KEY_LINE)
            c.paint(c.segment(0.75, 0.5, 0.75, 0.72, w), KEY_LINE)
        elif tile == Tile.DOOR:
            if phase != 2:  # closed: a solid door, barred across
                c.paint(c.box(0.15, 0.08, 0.85, 0.92), DOOR_LINE)
                c.paint(c.segment(0.15, 0.5, 0.85, 0.5, w), SHEET)
            else:  # open: the empty frame
                c.paint(np.abs(c.box(0.15, 0.08, 0.85, 0.92)) - w / 2, DOOR_LINE)
    if agent:
        triangle = c.polygon([(0.5, 0.18), (0.82, 0.8), (0.18, 0.8)])
        c.paint(triangle, AGENT_EDGE)
        c.paint(triangle + c.width(0.08), AGENT_FILL)
    if carrying:  # the key travels with the agent: a gold dot inside its triangle
        c.paint(c.circle(0.5, 0.6, 0.09), KEY_LINE)
    return np.round(c.rgb).clip(0, 255).astype(np.uint8)


def check_theme(name: object) -> str:
    """``name`` if it is a theme, else an :class:`EnvError` listing the themes."""
    if name not in THEMES:
        raise EnvError(f"unknown theme {name!r}; the themes are: {', '.join(THEMES)}")
    return str(name)


def cell_drawer(theme: str) -> CellDrawer:
    """The function that draws one cell in ``theme``."""
    if check_theme(theme) == "classic":
        from envs.grid.painter import draw_cell

        return draw_cell
    return _blueprint
