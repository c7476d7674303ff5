"""Grid-world MDPs: ASCII maps, an exact transition model, single and batched environments."""

from envs.grid.layout import Layout, Tile, parse_map
from envs.grid.maze import generate_maze
from envs.grid.model import (
    ACTION_NAMES,
    DOWN,
    DOWN_LEFT,
    DOWN_RIGHT,
    LEFT,
    RIGHT,
    UP,
    UP_LEFT,
    UP_RIGHT,
    GridModel,
    TransitionModel,
)
from envs.grid.observations import OBS_TYPES
from envs.grid.presets import CliffWalk, FourRooms, IceLake, KeyDoor, Maze, WindyGrid
from envs.grid.vector import GridVectorEnv
from envs.grid.world import GridWorld

__all__ = [
    "ACTION_NAMES",
    "DOWN",
    "DOWN_LEFT",
    "DOWN_RIGHT",
    "LEFT",
    "OBS_TYPES",
    "RIGHT",
    "UP",
    "UP_LEFT",
    "UP_RIGHT",
    "CliffWalk",
    "FourRooms",
    "GridModel",
    "GridVectorEnv",
    "GridWorld",
    "IceLake",
    "KeyDoor",
    "Layout",
    "Maze",
    "Tile",
    "TransitionModel",
    "WindyGrid",
    "generate_maze",
    "parse_map",
]
