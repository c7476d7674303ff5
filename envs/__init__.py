"""The lab's environments. Importing this package registers them with gymnasium under ``lab/``.

No torch here: these environments are plain gymnasium + numpy (+ pygame for windows), usable
from any RL library.
"""

from envs.errors import EnvError, InvalidActionError, MapError
from envs.grid import (
    DOWN,
    DOWN_LEFT,
    DOWN_RIGHT,
    LEFT,
    RIGHT,
    UP,
    UP_LEFT,
    UP_RIGHT,
    GridVectorEnv,
    GridWorld,
)
from envs.registry import ENTRIES, register_all

register_all()

__all__ = [
    "DOWN",
    "DOWN_LEFT",
    "DOWN_RIGHT",
    "ENTRIES",
    "LEFT",
    "RIGHT",
    "UP",
    "UP_LEFT",
    "UP_RIGHT",
    "EnvError",
    "GridVectorEnv",
    "GridWorld",
    "InvalidActionError",
    "MapError",
]
