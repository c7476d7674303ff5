"""Observation encoders: a grid world's state index turned into what an agent sees.

Every encoder works on a batch of state indices with array indexing, so the single environment
and :class:`~envs.grid.vector.GridVectorEnv` share one code path.

- ``index``: the state number, ``Discrete(n_states)`` (for tabular agents).
- ``coords``: ``[row, col]`` as float32, plus ``[key carried, door open]`` on maps with a key.
- ``onehot``: a float32 vector with a 1 at the state number.
- ``symbolic``: ``(H, W, C)`` uint8 planes, one per channel in :data:`CHANNELS`.
- ``pixels``: an RGB uint8 image drawn by :class:`~envs.grid.painter.GridPainter`.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from envs.errors import EnvError
from envs.grid.layout import Tile
from envs.grid.model import GridModel

OBS_TYPES = ("index", "coords", "onehot", "symbolic", "pixels")
CHANNELS = ("wall", "goal", "pit", "ice", "wind", "key", "door", "agent")


def check_obs_type(obs_type: str) -> str:
    if obs_type not in OBS_TYPES:
        raise EnvError(f"unknown observation type {obs_type!r}; choose one of: {', '.join(OBS_TYPES)}")
    return obs_type


class ObservationEncoder:
    """Encodes state indices as observations of one type."""

    def __init__(self, model: GridModel, obs_type: str, tile_size: int = 8) -> None:
        self.model = model
        self.obs_type = check_obs_type(obs_type)
        height, width = model.layout.shape
        if obs_type == "index":
            self.space: spaces.Space = spaces.Discrete(model.n_states)
        elif obs_type == "coords":
            table = np.stack([model.state_row, model.state_col], axis=1)
            high = [height - 1, width - 1]
            if model.n_phases > 1:
                table = np.concatenate(
                    [table, np.stack([model.state_phase >= 1, model.state_phase >= 2], 1)], 1
                )
                high += [1, 1]
            self._table = table.astype(np.float32)
            self.space = spaces.Box(0.0, np.array(high, np.float32), dtype=np.float32)
        elif obs_type == "onehot":
            self.space = spaces.Box(0.0, 1.0, shape=(model.n_states,), dtype=np.float32)
        elif obs_type == "symbolic":
            self._planes = self._symbolic_planes()
            high = np.ones((height, width, len(CHANNELS)), dtype=np.uint8)
            high[..., CHANNELS.index("wind")] = max(1, int(model.wind.max()))
            self.space = spaces.Box(np.zeros_like(high), high, dtype=np.uint8)
        else:
            from envs.grid.painter import GridPainter

            self.painter = GridPainter(model.layout.tiles, model.layout.ice, model.wind, tile_size)
            self.space = spaces.Box(0, 255, shape=(*self.painter.shape, 3), dtype=np.uint8)

    def _symbolic_planes(self) -> np.ndarray:
        """``(n_phases, H, W, C)`` planes of the map in each key/door phase, agent channel empty."""
        tiles, model = self.model.layout.tiles, self.model
        base = np.zeros((*tiles.shape, len(CHANNELS)), dtype=np.uint8)
        base[..., CHANNELS.index("wall")] = tiles == Tile.WALL
        base[..., CHANNELS.index("goal")] = tiles == Tile.GOAL
        base[..., CHANNELS.index("pit")] = tiles == Tile.PIT
        base[..., CHANNELS.index("ice")] = model.layout.ice
        base[..., CHANNELS.index("wind")] = np.where(tiles != Tile.WALL, model.wind[None, :], 0)
        planes = np.repeat(base[None], model.n_phases, axis=0)
        planes[0, ..., CHANNELS.index("key")] = tiles == Tile.KEY
        planes[:2, ..., CHANNELS.index("door")] = tiles == Tile.DOOR
        return planes

    def encode(self, states: np.ndarray) -> np.ndarray:
        """Observations for a batch of state indices: a new array with a leading batch axis."""
        model = self.model
        if self.obs_type == "index":
            return states.astype(np.int64)
        if self.obs_type == "coords":
            return self._table[states]
        if self.obs_type == "onehot":
            out = np.zeros((len(states), model.n_states), dtype=np.float32)
            out[np.arange(len(states)), states] = 1.0
            return out
        rows, cols, phases = model.state_row[states], model.state_col[states], model.state_phase[states]
        if self.obs_type == "symbolic":
            out = self._planes[phases]
            out[np.arange(len(states)), rows, cols, CHANNELS.index("agent")] = 1
            return out
        return self.painter.frames(rows, cols, phases)

    def encode_one(self, state: int) -> int | np.ndarray:
        """The observation of one state (a Python int for ``index``)."""
        if self.obs_type == "index":
            return state
        return self.encode(np.array([state]))[0]
