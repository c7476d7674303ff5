"""Rendering themes for grid worlds: the same cell drawn in different styles.

``classic`` is :func:`envs.grid.painter.draw_cell` (light floor, solid tiles, a round blue agent).
``blueprint`` is a second, procedurally drawn style on the same signed-distance canvas: a dark
navy sheet, tiles of other shapes and outlines (hatched walls, a crossed pit, a solid diamond
goal, a cyan ice sheet with glints, a square-bowed key, a barred door that opens to an empty
frame), the agent a blue triangle. Each thing keeps its classic hue (goal green, pit orange, key gold, agent
blue) and roughly its weight (solid goal and closed door, a thin open door), while floor and
walls swap light for dark: a re-skin, as a game's night mode would be.
``paper`` keeps classic's silhouettes and each thing's colour family but redraws them as a
print would: a warm palette, rounded floor tiles on grout, square walls with a lower lip, things
as pale fills in inked outlines (the goal's flag, the pit's rim, the door's frame, the agent's
ring), the agent a little smaller so that what it stands on shows.
All themes are deterministic, so an image in any of them decodes exactly back to its cells,
which is what lets image translation between them be scored against the truth.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from envs.errors import EnvError
from envs.grid.layout import Tile

CellDrawer = Callable[[int, int, bool, int, int, bool, bool], np.ndarray]
"""``draw(size, tile, ice, wind, phase, agent, carrying) -> (size, size, 3) uint8``."""

THEMES = ("classic", "blueprint", "paper")

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


PAPER_GROUT = (200, 192, 172)
PAPER_FLOOR = (246, 240, 226)
PAPER_STONE = (70, 62, 74)
PAPER_STONE_LIP = (40, 34, 44)
PAPER_START = (110, 100, 150)
PAPER_GOAL = (176, 226, 186)
PAPER_GOAL_INK = (30, 130, 70)
PAPER_PIT = (210, 80, 30)
PAPER_PIT_HOLE = (50, 24, 20)
PAPER_ICE = (178, 222, 238)
PAPER_GLINT = (255, 255, 255)
PAPER_WIND = (110, 120, 160)
PAPER_KEY = (214, 160, 20)
PAPER_DOOR = (120, 70, 40)
PAPER_DOOR_FILL = (214, 160, 110)
PAPER_AGENT = (30, 60, 180)
PAPER_AGENT_FILL = (110, 150, 250)


def _paper(
    size: int, tile: int, ice: bool, wind: int, phase: int, agent: bool, carrying: bool = False
) -> np.ndarray:
    from envs.grid.painter import _Canvas

    c = _Canvas(size, PAPER_GROUT)
    w = c.width(0.08)
    if tile == Tile.WALL:  # a square block with a darker lower lip
        c.paint(c.box(0, 0, 1, 1), PAPER_STONE_LIP)
        c.paint(c.box(0, 0, 1, 0.84), PAPER_STONE)
    else:
        c.paint(c.box(0.06, 0.06, 0.94, 0.94, 0.16), PAPER_ICE if ice else PAPER_FLOOR)  # a rounded tile
        if ice:
            c.paint(c.segment(0.2, 0.5, 0.5, 0.2, w), PAPER_GLINT)
            c.paint(c.segment(0.55, 0.8, 0.8, 0.55, w), PAPER_GLINT)
        for k in range(min(max(wind, 0), 3)):
            y = 0.3 + 0.2 * k
            c.paint(c.segment(0.3, y, 0.7, y, c.width(0.06)), PAPER_WIND)
        if tile == Tile.START:  # classic's ring and dot, inked
            c.paint(c.ring(0.5, 0.5, 0.3, w), PAPER_START)
            c.paint(c.circle(0.5, 0.5, 0.08), PAPER_START)
        elif tile == Tile.GOAL:  # classic's flag tile, pale with an inked rim, flag and pole
            c.paint(c.box(0.08, 0.08, 0.92, 0.92, 0.14), PAPER_GOAL_INK)
            c.paint(c.box(0.08, 0.08, 0.92, 0.92, 0.14) + w, PAPER_GOAL)
            c.paint(c.segment(0.36, 0.24, 0.36, 0.8, w), PAPER_GOAL_INK)
            c.paint(c.polygon([(0.39, 0.2), (0.39, 0.56), (0.76, 0.38)]), PAPER_GOAL_INK)
        elif tile == Tile.PIT:  # classic's rounded pit: an inked rim around a flat hole
            c.paint(c.box(0.1, 0.1, 0.9, 0.9, 0.3), PAPER_PIT)
            c.paint(c.box(0.1, 0.1, 0.9, 0.9, 0.3) + w, PAPER_PIT_HOLE)
        elif tile == Tile.KEY and phase == 0:  # classic's key, one flat stroke
            key = np.minimum.reduce(
                [
                    c.ring(0.3, 0.5, 0.13, w),
                    c.segment(0.42, 0.5, 0.84, 0.5, w),
                    c.segment(0.7, 0.5, 0.7, 0.66, w),
                    c.segment(0.82, 0.5, 0.82, 0.62, w),
                ]
            )
            c.paint(key, PAPER_KEY)
        elif tile == Tile.DOOR:
            if phase != 2:  # closed: classic's door, pale with an inked frame and a round keyhole
                c.paint(c.box(0.06, 0.02, 0.94, 1.0, 0.06), PAPER_DOOR)
                c.paint(c.box(0.06, 0.02, 0.94, 1.0, 0.06) + w, PAPER_DOOR_FILL)
                c.paint(c.circle(0.5, 0.5, 0.1), PAPER_DOOR)
            else:  # open: classic's frame and the door leaf swung back
                c.paint(np.abs(c.box(0.06, 0.02, 0.94, 1.1, 0.06)) - w / 2, PAPER_DOOR)
                c.paint(c.polygon([(0.1, 0.06), (0.1, 1.0), (0.3, 0.9), (0.3, 0.16)]), PAPER_DOOR)
    if agent:  # classic's round token, a little smaller (what it stands on shows), inked
        c.paint(c.circle(0.5, 0.5, 0.29), PAPER_AGENT)
        c.paint(c.circle(0.5, 0.5, 0.29) + w, PAPER_AGENT_FILL)
        c.paint(c.circle(0.42, 0.42, 0.08), PAPER_AGENT)
    if carrying:  # a small key badge at the lower right
        c.paint(c.circle(0.76, 0.76, 0.2), PAPER_AGENT_FILL)
        c.paint(c.circle(0.76, 0.76, 0.1), PAPER_KEY)
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
    return _blueprint if theme == "blueprint" else _paper
