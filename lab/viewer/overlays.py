"""Drawings over the viewer's frame, toggled with a key: :class:`Overlay`, and for grid worlds the
value heatmap with greedy-action arrows (:func:`value_heatmap`, :func:`value_overlay`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lab.viewer.sources import ViewFrame

if TYPE_CHECKING:
    from envs.grid.model import GridModel


@dataclass
class Overlay:
    """A drawing over the frame, toggled with ``key``: ``draw(frame, view)`` returns the new frame;
    ``describe(view)``, when given, adds a few words to the HUD while the overlay is on."""

    key: str
    name: str
    draw: Callable[[np.ndarray, ViewFrame], np.ndarray]
    enabled: bool = False
    describe: Callable[[ViewFrame], str] | None = None


# ----- the value heatmap -----

_ARROWS: dict[tuple[int, int, int], np.ndarray] = {}


def _arrow_mask(tile: int, dr: int, dc: int) -> np.ndarray:
    """Antialiased coverage ``(tile, tile)`` of an arrow pointing along (row ``dr``, column ``dc``)."""
    key = (tile, dr, dc)
    if key not in _ARROWS:
        d = np.array([dc, dr], dtype=np.float64)
        d /= np.linalg.norm(d)
        perp = np.array([-d[1], d[0]])
        centre = np.full(2, tile / 2)
        tip, tail = centre + 0.32 * tile * d, centre - 0.30 * tile * d
        base = tip - 0.26 * tile * d
        ys, xs = np.mgrid[0:tile, 0:tile] + 0.5
        p = np.stack([xs, ys], axis=-1)
        # the shaft: distance to the segment tail-base, minus its half width
        ab = base - tail
        h = np.clip(((p - tail) @ ab) / (ab @ ab), 0, 1)
        shaft = np.linalg.norm(p - tail - h[..., None] * ab, axis=-1) - max(0.9, 0.055 * tile)
        # the head: a triangle, as the largest of its three edges' signed distances
        corners = [tip, base + 0.2 * tile * perp, base - 0.2 * tile * perp]
        edges = []
        for a, b in zip(corners, corners[1:] + corners[:1], strict=True):
            e = b - a
            n = np.array([e[1], -e[0]]) / np.linalg.norm(e)
            inner = np.mean(corners, axis=0)
            if (inner - a) @ n > 0:
                n = -n
            edges.append((p - a) @ n)
        head = np.max(edges, axis=0)
        _ARROWS[key] = np.clip(0.5 - np.minimum(shaft, head), 0.0, 1.0)
    return _ARROWS[key]


def tinted_states(model: GridModel) -> np.ndarray:
    """Which states the heatmap colours: not terminal, not on a goal or pit cell (those keep their look)."""
    from envs.grid.layout import Tile

    tiles = model.layout.tiles[model.state_row, model.state_col]
    return ~model.terminal & (tiles != Tile.GOAL) & (tiles != Tile.PIT)


def value_heatmap(
    frame: np.ndarray,
    model: GridModel,
    values: np.ndarray,
    policy: np.ndarray | None = None,
    phase: int = 0,
    *,
    agent_state: int | None = None,
    alpha: float = 0.6,
    value_range: tuple[float, float] | None = None,
    cmap: str = "viridis",
) -> np.ndarray:
    """``frame`` with every non-terminal cell of ``phase`` tinted by its value and a greedy arrow.

    ``values[S]`` and ``policy[S]`` (an action per state) are indexed like the model's states;
    colours span ``value_range`` (default: the smallest to largest value of the tinted states, in
    every phase) on matplotlib's ``cmap``. Goal and pit cells, terminal states and ``agent_state``'s
    cell are left as drawn, so their pictures stay readable. Returns a new uint8 frame.
    """
    from matplotlib import colormaps

    frame = np.asarray(frame)
    h, w = model.layout.shape
    t = frame.shape[0] // h
    if frame.ndim != 3 or frame.shape != (h * t, w * t, 3) or t < 1:
        raise ValueError(
            f"a frame of this {h}x{w} map is ({h}t, {w}t, 3) for a tile size t; got {frame.shape}"
        )
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (model.n_states,):
        raise ValueError(f"values must have one entry per state ({model.n_states}); got shape {values.shape}")
    if not 0 <= phase < model.n_phases:
        raise ValueError(f"phase must lie in [0, {model.n_phases - 1}]; got {phase}")
    shown = tinted_states(model)
    if value_range is None:
        finite = values[shown & np.isfinite(values)]
        value_range = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    states = phase * model.n_cells + np.arange(model.n_cells)
    states = states[shown[states] & (states != agent_state)]
    lo, hi = value_range
    norm = np.clip((values[states] - lo) / (hi - lo), 0, 1) if hi > lo else np.full(len(states), 0.5)
    norm = np.nan_to_num(norm, nan=0.0)
    colours = colormaps[cmap](norm)[:, :3]
    out = frame.astype(np.float32)
    blocks = out.reshape(h, t, w, t, 3)
    rows, cols = model.state_row[states], model.state_col[states]
    blocks[rows, :, cols] = (1 - alpha) * blocks[rows, :, cols] + alpha * 255 * colours[:, None, None, :]
    if policy is not None and t >= 6:
        policy = np.asarray(policy)
        light = colours @ np.array([0.2126, 0.7152, 0.0722]) > 0.45
        for i, s in enumerate(states):
            dr, dc = model.moves[int(policy[s])]
            mask = _arrow_mask(t, dr, dc)[..., None]
            ink = np.array((25, 25, 35) if light[i] else (250, 250, 250), dtype=np.float32)
            cell = blocks[rows[i], :, cols[i]]
            blocks[rows[i], :, cols[i]] = (1 - mask) * cell + mask * ink
    return np.round(out).clip(0, 255).astype(np.uint8)


def value_overlay(
    model: GridModel,
    values: np.ndarray | Callable[[], tuple[np.ndarray, np.ndarray | None]],
    policy: np.ndarray | None = None,
    *,
    key: str = "v",
    name: str = "values",
    enabled: bool = False,
    alpha: float = 0.6,
) -> Overlay:
    """A toggled :func:`value_heatmap` for a grid world.

    ``values`` is ``V[S]`` (with ``policy[S]``), or a function returning ``(V, policy)``, called at
    each draw (so a learning agent's current estimates show) or, for an expensive plan, once and
    cached by the caller. The key/door phase and the agent's cell come from the frame's ``state``.
    """

    def current() -> tuple[np.ndarray, np.ndarray | None]:
        return values() if callable(values) else (values, policy)

    def draw(frame: np.ndarray, view: ViewFrame) -> np.ndarray:
        V, pi = current()
        phase = 0 if view.state is None else int(model.state_phase[view.state])
        return value_heatmap(frame, model, V, pi, phase, agent_state=view.state, alpha=alpha)

    def describe(view: ViewFrame) -> str:
        V, _ = current()
        here = "" if view.state is None else f"V here {V[view.state]:.3g}, "
        live = V[tinted_states(model)]
        span = f"{live.min():.3g} to {live.max():.3g}" if live.size else "-"
        return f"{here}range {span}"

    return Overlay(key=key, name=name, draw=draw, enabled=enabled, describe=describe)


def cached(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` computed on the first call only (for a plan that is costly and never changes)."""
    box: list[Any] = []

    def get() -> Any:
        if not box:
            box.append(fn())
        return box[0]

    return get
