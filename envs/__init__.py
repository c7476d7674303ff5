"""The lab's environments. Importing this package registers them with gymnasium under ``lab/``.

No torch here: these environments are plain gymnasium + numpy (+ pygame for windows), usable
from any RL library.
"""

from envs.errors import (
    CorpusError,
    EnvError,
    GrammarError,
    InvalidActionError,
    MapError,
    TextError,
    VocabularyError,
)
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
from envs.registry import ENTRIES, TEXT_ENTRIES, register_all
from envs.text import TextGenEnv, TextVectorEnv

register_all()

__all__ = [
    "DOWN",
    "DOWN_LEFT",
    "DOWN_RIGHT",
    "ENTRIES",
    "LEFT",
    "RIGHT",
    "TEXT_ENTRIES",
    "UP",
    "UP_LEFT",
    "UP_RIGHT",
    "CorpusError",
    "EnvError",
    "GrammarError",
    "GridVectorEnv",
    "GridWorld",
    "InvalidActionError",
    "MapError",
    "TextError",
    "TextGenEnv",
    "TextVectorEnv",
    "VocabularyError",
]
